package sumlog

import "errors"

var (
	// ErrConflict means a module version already has a different record in
	// the log. The log never changes a record: a conflict is a security event
	// (a moved tag, or a different zip for the same version), not a retry.
	ErrConflict = errors.New("checksum log already has a different record")

	// ErrInvalidRecord means a record text is not exactly the two go.sum
	// lines of its module version. Permanent.
	ErrInvalidRecord = errors.New("invalid go.sum record")

	// ErrCorrupt means Open found log files that do not match the signed
	// tree head the log last persisted (records lost or changed, or a head
	// signed by another key). Serving such a log would fork it, so Open
	// refuses; the files need an operator, not a retry.
	ErrCorrupt = errors.New("checksum log corrupt")

	// ErrLocked means another Log, in this process or another one, has the
	// directory open.
	ErrLocked = errors.New("checksum log directory in use")

	// ErrBroken means an earlier write or fsync failed, so the files may end
	// in data that the log did not commit. The log keeps serving what it
	// committed but refuses appends until it is closed and opened again,
	// which repairs the files.
	ErrBroken = errors.New("checksum log needs reopening after a failed write")
)
