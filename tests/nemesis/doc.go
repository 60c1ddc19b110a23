// Package nemesis runs the whole system under faults: three
// proximity-coordinator processes, each in its own network namespace on a
// bridge the test makes, five agents on simulated Proxmox nodes, a workload
// of app operations by several users and registry reservations, and a
// nemesis drawn from a seed (kill -9, SIGSTOP, nftables partitions, agent
// kills, simulator faults). After healing it checks that every operation
// ended, that the registry and the nodes agree, that the reservation
// history is linearizable (porcupine) and that the servers' states are
// identical. TestNemesis runs only when NEMESIS_DURATION is set (make
// nemesis); see docs/reliability.md.
package nemesis
