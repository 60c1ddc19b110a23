package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The registry's hostname table as porcupine checks it, shared by
// coordinator/server's linearizability test and the nemesis: per hostname,
// either free ("") or held by one reservation ID. Operations are
// reserve(hostname), release(id) and lookup(hostname). Each partition (one
// hostname) is checked on its own.

// RegInput is one operation on the registry.
type RegInput struct {
	Op   string // reserve | release | lookup
	Host string
	ID   string // release only
	Rid  string // request ID, for the unknown-outcome marker
}

// RegOutput is what the registry answered.
type RegOutput struct {
	Status string // ok | conflict | notfound | unknown
	ID     string // reserve ok, lookup hit
}

// UnknownHeld is the state after a reserve whose outcome is unknown took
// effect: held by a reservation whose ID nobody saw.
const UnknownHeld = "?"

// RegistryModel is the model (RegistryModel.ToModel() for porcupine's
// checks).
var RegistryModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			h := op.Input.(RegInput).Host
			if _, ok := by[h]; !ok {
				keys = append(keys, h)
			}
			by[h] = append(by[h], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(string), input.(RegInput), output.(RegOutput)
		held := st != ""
		switch in.Op {
		case "reserve":
			switch out.Status {
			case "ok":
				if !held {
					return []any{out.ID}
				}
			case "conflict":
				if held {
					return []any{st}
				}
			case "unknown":
				if held {
					return []any{st}
				}
				return []any{st, UnknownHeld}
			}
		case "release":
			switch out.Status {
			case "ok":
				if st == in.ID || st == UnknownHeld {
					return []any{""}
				}
			case "notfound":
				if st != in.ID {
					return []any{st}
				}
			case "unknown":
				if st == in.ID || st == UnknownHeld {
					return []any{st, ""}
				}
				return []any{st}
			}
		case "lookup":
			switch {
			case out.Status == "unknown":
				return []any{st}
			case out.ID == "" && !held:
				return []any{""}
			case out.ID != "" && (st == out.ID || st == UnknownHeld):
				return []any{out.ID}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(RegInput), output.(RegOutput)
		switch in.Op {
		case "release":
			return fmt.Sprintf("release(%s) -> %s", in.ID, out.Status)
		case "lookup":
			return fmt.Sprintf("lookup(%s) -> %q", in.Host, out.ID)
		}
		return fmt.Sprintf("reserve(%s) -> %s %s", in.Host, out.Status, out.ID)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// RegistryCall sends one request to the API (body nil for none; key, when
// set, goes in Idempotency-Key) and answers the status and body.
type RegistryCall func(method, path string, body any, key string) (status int, raw []byte, err error)

// RegistryAttempt runs one operation of a history through the API. definite
// is false when the outcome is unknown (no answer, a 503, or an answer no
// operation gives, which unexpected then describes): the operation may or
// may not have happened.
func RegistryAttempt(in RegInput, call RegistryCall) (out RegOutput, definite bool, unexpected string) {
	unknown := RegOutput{Status: "unknown"}
	switch in.Op {
	case "reserve":
		st, raw, err := call("POST", "/api/v1/reservations", map[string]any{"request_id": in.Rid, "hostname": in.Host, "node": "pve1"}, "")
		var r struct {
			ID string `json:"id"`
		}
		switch {
		case err != nil || st == 503:
		case st == 201 && json.Unmarshal(raw, &r) == nil && r.ID != "":
			return RegOutput{Status: "ok", ID: r.ID}, true, ""
		case st == 409 && strings.Contains(string(raw), "is taken"):
			return RegOutput{Status: "conflict"}, true, ""
		default:
			return unknown, false, fmt.Sprintf("reserve %s: %d %s", in.Host, st, bytes.TrimSpace(raw))
		}
	case "release":
		st, raw, err := call("DELETE", "/api/v1/reservations/"+in.ID, nil, in.Rid)
		switch {
		case err != nil || st == 503:
		case st == 204:
			return RegOutput{Status: "ok"}, true, ""
		case st == 404:
			return RegOutput{Status: "notfound"}, true, ""
		default:
			return unknown, false, fmt.Sprintf("release %s: %d %s", in.ID, st, bytes.TrimSpace(raw))
		}
	case "lookup":
		st, raw, err := call("GET", "/api/v1/reservations?hostname="+url.QueryEscape(in.Host), nil, "")
		var p struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		switch {
		case err != nil || st == 503:
		case st == 200 && json.Unmarshal(raw, &p) == nil && len(p.Items) == 0:
			return RegOutput{}, true, ""
		case st == 200 && len(p.Items) > 0:
			return RegOutput{ID: p.Items[0].ID}, true, ""
		default:
			return unknown, false, fmt.Sprintf("lookup %s: %d %s", in.Host, st, bytes.TrimSpace(raw))
		}
	}
	return unknown, false, ""
}
