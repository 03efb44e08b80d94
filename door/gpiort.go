package door

import "golang.org/x/sys/unix"

// gpioRealtimePriority is the SCHED_FIFO priority of a thread sending a
// Wiegand frame: above every normal thread (recognition included), below
// the kernel's threaded interrupt handlers (50 on PREEMPT_RT kernels).
const gpioRealtimePriority = 40

// gpioRealtime moves the calling thread, which must be locked to its
// goroutine, to SCHED_FIFO so that the load of recognition does not stretch
// a frame's pulses and intervals. It returns whether that was permitted
// (CAP_SYS_NICE or an RLIMIT_RTPRIO, and no systemd RestrictRealtime=) and
// the function putting the thread back: it must run before the thread is
// unlocked, and if it fails the thread must stay locked, or a thread of the
// Go runtime would stay real-time.
func gpioRealtime() (restore func() error, ok bool) {
	nothing := func() error { return nil }
	tid := unix.Gettid()
	old, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return nothing, false
	}
	rt := *old
	rt.Policy, rt.Priority, rt.Nice = unix.SCHED_FIFO, gpioRealtimePriority, 0
	if err := unix.SchedSetAttr(tid, &rt, 0); err != nil {
		return nothing, false
	}
	return func() error { return unix.SchedSetAttr(tid, old, 0) }, true
}
