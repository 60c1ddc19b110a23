// Package nemesis runs the whole system under faults: three
// proximity-coordinator processes, each in its own network namespace on a
// bridge the test makes, five agents on simulated Proxmox nodes, a workload
// of app operations by several users (updates to the versions a catalog
// directory publishes during the run included) and registry reservations,
// and a nemesis drawn from a seed (kill -9, SIGSTOP, nftables partitions,
// agent kills, simulator faults, hung workers healed by a user's cancel or
// an admin's stop of the task). After healing it checks that every
// operation ended, that the registry and the nodes agree (the version each
// app records included), that the reservation
// history is linearizable (porcupine) and that the servers' states are
// identical. TestNemesis runs only when NEMESIS_DURATION is set (make
// nemesis); see docs/reliability.md.
package nemesis
