package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is the CPU time of a process (user + system): its own, and that
// of its children it has waited for (for modgate: git).
type cpuTimes struct {
	Self, Children time.Duration
}

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{Self: a.Self - b.Self, Children: a.Children - b.Children}
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux platform Go supports.
const clockTick = 10 * time.Millisecond

// procCPU reads a live process's CPU times from /proc/<pid>/stat (Linux).
func procCPU(pid int) (cpuTimes, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	return parseStat(string(data))
}

// parseStat reads utime, stime, cutime and cstime (fields 14-17) from a
// /proc/<pid>/stat line; the command name, field 2, is in parentheses and
// may hold spaces and parentheses.
func parseStat(s string) (cpuTimes, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("bad /proc stat line %q", s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 15 {
		return cpuTimes{}, fmt.Errorf("bad /proc stat line %q", s)
	}
	var t [4]time.Duration
	for k := range t {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("bad /proc stat line %q", s)
		}
		t[k] = time.Duration(n) * clockTick
	}
	return cpuTimes{Self: t[0] + t[1], Children: t[2] + t[3]}, nil
}

// machineCPU is the machine's busy CPU time since boot, from the first line
// of /proc/stat (user, nice, system, irq, softirq; steal separately: time
// the hypervisor gave to other guests).
type machineCPU struct {
	Busy, Steal time.Duration
	At          time.Time
}

func readMachineCPU() (machineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("bad /proc/stat line %q", line)
	}
	var v [8]time.Duration
	for k := range v {
		n, err := strconv.ParseInt(f[1+k], 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("bad /proc/stat line %q", line)
		}
		v[k] = time.Duration(n) * clockTick
	}
	// user nice system idle iowait irq softirq steal
	return machineCPU{Busy: v[0] + v[1] + v[2] + v[5] + v[6], Steal: v[7], At: time.Now()}, nil
}

// otherLoad measures the CPU the rest of the machine uses during a phase:
// the machine's busy time minus what the benchmark's own processes used,
// in cores on average, plus steal.
type otherLoad struct {
	m0 machineCPU
}

func startLoad() *otherLoad {
	m, _ := readMachineCPU()
	return &otherLoad{m0: m}
}

// stop returns the cores other work kept busy, given the CPU time the
// benchmark's own processes used during the phase.
func (l *otherLoad) stop(ours time.Duration) (cores, steal float64) {
	m1, err := readMachineCPU()
	if err != nil || l.m0.At.IsZero() {
		return 0, 0
	}
	wall := m1.At.Sub(l.m0.At).Seconds()
	if wall <= 0 {
		return 0, 0
	}
	other := (m1.Busy - l.m0.Busy - ours).Seconds()
	return max(0, other/wall), (m1.Steal - l.m0.Steal).Seconds() / wall
}
