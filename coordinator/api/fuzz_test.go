package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/proximity-ve/proximity/internal/catalog"
	"github.com/proximity-ve/proximity/internal/problem"
)

// createBody is the shape of POST /api/v1/apps.
type createBody struct {
	CatalogID   string                     `json:"catalog_id"`
	Hostname    string                     `json:"hostname"`
	Node        string                     `json:"node"`
	Settings    map[string]json.RawMessage `json:"settings"`
	Environment map[string]json.RawMessage `json:"environment"`
	Resources   *catalog.Resources         `json:"resources"`
}

var createKeys = map[string]bool{"catalog_id": true, "hostname": true, "node": true, "settings": true,
	"environment": true, "resources": true}

// FuzzDecode: the request body decoder refuses, as an Invalid problem,
// anything but one JSON object whose top-level keys are the body's field
// names exactly (no other case, none twice); what it accepts is valid
// JSON, and the value it fills, written out and decoded again, is the
// same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"catalog_id":"gitea","hostname":"git","settings":{"PORT":3000,"X":"y","B":true}}`,
		`{"hostname":"a","resources":{"cores":2,"memory_mb":1024,"disk_gb":8}}`, `{}`, ` {"node":"pve"} `,
		`{"node":"pve"}{}`, `{"node":"pve"} x`, `[]`, `null`, `{"Hostname":"a"}`, `{"node":"a","node":"b"}`,
		`{"colour":"blue"}`, `{"resources":{"cores":"2"}}`, `{"settings":{"A":1,"A":2}}`, "{\"node\":\"\\ud800\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in createBody
		err := (&request{body: body}).decode(&in)
		if err != nil {
			if !problem.Is(err, problem.Invalid) {
				t.Fatalf("%q: %v is not Invalid", body, err)
			}
			return
		}
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) || trimmed[0] != '{' {
			t.Fatalf("accepted %q, not one JSON object", body)
		}
		var keys map[string]json.RawMessage
		if json.Unmarshal(trimmed, &keys) != nil {
			t.Fatalf("accepted %q, not an object", body)
		}
		for k := range keys {
			if !createKeys[k] {
				t.Fatalf("accepted the key %q of %q", k, body)
			}
		}
		out, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("the decoded value does not marshal: %v", err)
		}
		var again createBody
		if err := (&request{body: out}).decode(&again); err != nil {
			t.Fatalf("its own encoding %s is refused: %v", out, err)
		}
		if !reflect.DeepEqual(normalize(in), normalize(again)) {
			t.Fatalf("decoded %+v, again %+v", in, again)
		}
	})
}

// normalize compacts the raw settings, which marshalling reformats.
func normalize(b createBody) createBody {
	for _, m := range []map[string]json.RawMessage{b.Settings, b.Environment} {
		for k, v := range m {
			var c bytes.Buffer
			if json.Compact(&c, v) == nil {
				m[k] = c.Bytes()
			}
		}
	}
	return b
}

// TestFuzzDecodeExactKeys: a field named in another case or given twice,
// and a closing bracket after the object, are refused; encoding/json
// matched "Hostname" to "hostname" and kept the last of two "node"s, and
// "{}}" passed the trailing data check (found by FuzzDecode; the inputs
// are in testdata/fuzz).
func TestFuzzDecodeExactKeys(t *testing.T) {
	for _, body := range []string{`{"Hostname":"a"}`, `{"HOSTNAME":"a"}`, `{"node":"a","node":"b"}`, `{}}`, `{"node":"a"}]`, `{} {}`} {
		var in createBody
		if err := (&request{body: []byte(body)}).decode(&in); !problem.Is(err, problem.Invalid) {
			t.Errorf("%s: %v, want Invalid", body, err)
		}
	}
	var in createBody
	if err := (&request{body: []byte(`{"hostname":"a","node":"b","settings":{"a":1,"A":2}}`)}).decode(&in); err != nil || in.Hostname != "a" {
		t.Errorf("exact keys refused: %v", err)
	}
}

// The fields of an embedded struct are the body's own, as encoding/json
// promotes them (PATCH /api/v1/apps/{id} takes the update policy's fields
// from one); an unknown one beside them is still refused.
func TestDecodeTakesThePromotedFieldsOfAnEmbeddedStruct(t *testing.T) {
	type policy struct {
		AutoUpdate *string `json:"auto_update"`
		Minutes    *int    `json:"maintenance_window_minutes"`
	}
	type patch struct {
		Settings map[string]string `json:"settings"`
		policy
	}
	var in patch
	if err := (&request{body: []byte(`{"auto_update":"notify","maintenance_window_minutes":60}`)}).decode(&in); err != nil || in.AutoUpdate == nil || *in.AutoUpdate != "notify" {
		t.Fatalf("promoted fields refused: %v %+v", err, in)
	}
	if err := (&request{body: []byte(`{"auto_update":"notify","policy":{}}`)}).decode(&in); !problem.Is(err, problem.Invalid) {
		t.Fatalf("the embedded struct's own name taken: %v", err)
	}
}
