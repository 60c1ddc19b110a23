package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// BenchmarkReserveThreeServers measures reservations through the HTTP API
// of the leader of an in-process three-server cluster (real Raft on disk).
func BenchmarkReserveThreeServers(b *testing.B) {
	tc := newTestCluster(b, 3)
	if st, err := tc.call(0, "PUT", "/api/v1/settings/registry", tc.token,
		map[string]int{"vmid_min": 100, "vmid_max": 999_999_999, "port_min": 1024, "port_max": 65535}, nil, nil); err != nil || st != 200 {
		b.Fatalf("widen pools: %d %v", st, err)
	}
	url := tc.nodes[tc.waitLeader()].url() + "/api/v1/reservations"
	var n atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"hostname":"b%d","node":"pve%d","public_ports":1}`, i, i%512)
			req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := tc.http.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
}
