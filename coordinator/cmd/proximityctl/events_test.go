package main

import (
	"bytes"
	"testing"
)

// TestEventsPrintOneLinePerEvent: proximityctl events prints one line per
// event (its id, its name and what changed), or with -o json the event's
// data exactly as the stream sent it.
func TestEventsPrintOneLinePerEvent(t *testing.T) {
	evs := []sse{
		{id: "12-0", event: "app", data: `{"id":"app_1","hostname":"vault","status":"deploying","step":"create"}`},
		{id: "13-1", event: "backup", data: `{"id":"bak_1","app_id":"app_1","status":"failed","error":"backup cancelled by alice"}`},
		{id: "14-0", event: "app.deleted", data: `{"id":"app_1"}`},
		{id: "20-0", event: "reset", data: `{"reason":"re-read the state"}`},
	}
	for _, tc := range []struct {
		output, want string
	}{
		{"table", "12-0  app  app_1  vault  deploying (create)\n" +
			"13-1  backup  bak_1  app app_1  failed  backup cancelled by alice\n" +
			"14-0  app.deleted  app_1\n" +
			"20-0  reset  re-read the state\n"},
		{"json", `{"id":"app_1","hostname":"vault","status":"deploying","step":"create"}` + "\n" +
			`{"id":"bak_1","app_id":"app_1","status":"failed","error":"backup cancelled by alice"}` + "\n" +
			`{"id":"app_1"}` + "\n" + `{"reason":"re-read the state"}` + "\n"},
	} {
		var out bytes.Buffer
		e := &env{stdout: &out, output: tc.output}
		for _, ev := range evs {
			e.printEvent(ev)
		}
		if out.String() != tc.want {
			t.Errorf("-o %s:\n%s\nwant\n%s", tc.output, out.String(), tc.want)
		}
	}
}
