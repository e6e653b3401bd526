// Command pause is the first process of every pod sandbox on the node test bed.
//
// A sandbox only needs a process that holds its namespaces open and does nothing:
// it blocks until SIGINT or SIGTERM and then exits 0. As the pid 1 of a pod that
// shares its process namespace it also reaps children re-parented to it, so no
// zombie outlives the container that left it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
