package fsm

import (
	"fmt"
	"testing"
)

// BenchmarkApplyReserveBatch measures applying one log entry of 256
// reservations (decode, validate, allocate, dedup), as every server does
// for every batch.
func BenchmarkApplyReserveBatch(b *testing.B) {
	f := New(0)
	apply(&testing.T{}, f, Command{Type: CmdSetPools, RequestID: "p", SetPools: &PoolSettings{
		VMIDMin: 100, VMIDMax: 999_999_999, PortMin: 1024, PortMax: 65535}})
	const per = 256
	entries := make([][]byte, b.N)
	for i := range entries {
		cmds := make([]Command, per)
		for j := range cmds {
			n := i*per + j
			cmds[j] = reserveCmd(fmt.Sprint("r", n), fmt.Sprint("id", n), fmt.Sprint("h", n), fmt.Sprint("pve", n%512), 1, false)
		}
		data, err := EncodeBatch(cmds)
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = data
	}
	b.ResetTimer()
	for i, data := range entries {
		res := f.Apply(rawLog(uint64(i+2), data)).([]Result)
		if res[0].Err() != nil {
			b.Fatal(res[0].Err())
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "reservations/s")
}
