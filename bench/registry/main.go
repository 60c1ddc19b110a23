// Package main is the registry benchmark. It measures the coordinator's
// reservation throughput and latency against etcd doing the same atomic
// reservation, on one machine.
//
// It starts three proximity-coordinator servers (--bootstrap-expect 3) and,
// separately, three etcd members, all on loopback with their data on the
// same disk and fsync on. At each concurrency level, clients reserve
// unique hostnames for a fixed time:
//
//   - Proximity: POST /api/v1/reservations {hostname, node, public_ports: 1}
//     to the leader; the registry picks the VMID and the port.
//   - etcd: one transaction that puts /vmid/N, /host/H and /port/NODE/P only
//     if none of the three keys exists, with candidates from a shared
//     counter (so etcd never has to search for a free entry).
//
// Clients of both talk to the leader directly. It lives in its own module
// so that the product does not depend on the etcd client.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	coord := flag.String("coordinator", "../../bin/proximity-coordinator", "path to the proximity-coordinator binary")
	etcdBin := flag.String("etcd", "etcd", "path to the etcd binary")
	levels := flag.String("clients", "1,64,256", "comma-separated concurrency levels")
	dur := flag.Duration("duration", 10*time.Second, "measured time per level")
	warm := flag.Duration("warmup", 2*time.Second, "unmeasured time before each level")
	host := flag.String("host", "127.0.0.1", "loopback address to run everything on")
	flag.Parse()

	var conc []int
	for _, s := range strings.Split(*levels, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad -clients %q\n", *levels)
			os.Exit(2)
		}
		conc = append(conc, n)
	}
	dir, err := os.MkdirTemp("", "proximity-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)

	fmt.Printf("registry benchmark: %s per level after %s warm-up; levels %v; data in %s\n\n", *dur, *warm, conc, dir)
	prox, err := runProximity(*coord, *host, dir, conc, *dur, *warm)
	if err != nil {
		fail(fmt.Errorf("proximity: %w", err))
	}
	etcd, err := runEtcd(*etcdBin, *host, dir, conc, *dur, *warm)
	if err != nil {
		fail(fmt.Errorf("etcd: %w", err))
	}
	report(conc, prox, etcd)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func report(conc []int, prox, etcd []result) {
	fmt.Println("| clients | system | reservations/s | p50 ms | p99 ms | errors |")
	fmt.Println("|---:|---|---:|---:|---:|---:|")
	for i, c := range conc {
		for _, r := range []struct {
			name string
			r    result
		}{{"proximity", prox[i]}, {"etcd", etcd[i]}} {
			fmt.Printf("| %d | %s | %.0f | %.2f | %.2f | %d |\n", c, r.name, r.r.rate(), ms(r.r.p(50)), ms(r.r.p(99)), r.r.errors)
		}
	}
	fmt.Println()
	fmt.Println("| clients | throughput proximity/etcd | p99 proximity/etcd |")
	fmt.Println("|---:|---:|---:|")
	for i, c := range conc {
		fmt.Printf("| %d | %.2fx | %.2fx |\n", c, prox[i].rate()/etcd[i].rate(), float64(prox[i].p(99))/float64(etcd[i].p(99)))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
