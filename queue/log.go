package queue

import (
	"context"
	"fmt"
	"log/slog"
)

// serverLog routes the embedded nats-server's log to slog. The server's
// notices (its start-up banner among them) are debug output for modgate. A
// fatal error is logged, never exits the process, and is reported to embed
// so that Start fails instead of waiting for a server that will not come up.
type serverLog struct {
	log   *slog.Logger
	fatal chan string
}

func (l *serverLog) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l *serverLog) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLog) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l *serverLog) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l *serverLog) Debugf(format string, v ...any)  {}
func (l *serverLog) Tracef(format string, v ...any)  {}

func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
