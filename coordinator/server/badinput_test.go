package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/proximity-ve/proximity/coordinator/fsm"
)

// openAPIOperation is what the bad-input walk reads of one operation of
// docs/openapi.yaml.
type openAPIOperation struct {
	Method, Path string
	Access       string // x-proximity-access: public, user, self, admin
	Params       []openAPIParam
	Body         map[string]any // the request body's schema, resolved; nil: none
}

type openAPIParam struct {
	Name, In, Type string
}

// readOpenAPI reads every operation of docs/openapi.yaml, in a stable
// order, with the request body schemas resolved one level.
func readOpenAPI(t *testing.T) []openAPIOperation {
	t.Helper()
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]map[string]any `yaml:"paths"`
		Components struct {
			Schemas map[string]map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	resolve := func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			return doc.Components.Schemas[ref[strings.LastIndex(ref, "/")+1:]]
		}
		return s
	}
	var ops []openAPIOperation
	for path, methods := range doc.Paths {
		for method, op := range methods {
			o := openAPIOperation{Method: strings.ToUpper(method), Path: path}
			o.Access, _ = op["x-proximity-access"].(string)
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm, _ := p.(map[string]any)
				schema, _ := pm["schema"].(map[string]any)
				typ, _ := schema["type"].(string)
				name, _ := pm["name"].(string)
				in, _ := pm["in"].(string)
				o.Params = append(o.Params, openAPIParam{Name: name, In: in, Type: typ})
			}
			if rb, ok := op["requestBody"].(map[string]any); ok {
				content, _ := rb["content"].(map[string]any)
				for _, ct := range []string{"application/json", "application/merge-patch+json"} {
					if c, ok := content[ct].(map[string]any); ok {
						s, _ := c["schema"].(map[string]any)
						o.Body = resolve(s)
						if o.Body == nil {
							o.Body = map[string]any{}
						}
						break
					}
				}
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	return ops
}

// hostileRequest is one request of the walk: the path with its query, and
// the body (nil: none).
type hostileRequest struct {
	what   string
	path   string
	body   []byte
	header [2]string // a header's name and value, if any
}

// Hostile values. Path IDs are put in the path escaped, except the ones
// meant raw (a literal "../" and "%00").
var (
	hostileIDs = []struct {
		v   string
		raw bool
	}{
		{strings.Repeat("a", 4000), false}, {"../", true}, {"..%2F..%2Fetc%2Fpasswd", true}, {"..", false},
		{"\x01\x1b[31m\x7f", false}, {"ünï😀", false}, {"%00", true}, {"%2500", true},
	}
	hostileNumbers = []string{"0", "-1", "9223372036854775807", "9223372036854775808", "1e309", "abc", "1.5", ""}
	hostileHeaders = []string{strings.Repeat("k", 4000), "ünï😀", "a\tb"}
	hostileStrings = []string{strings.Repeat("x", 4000), "\x01\x7f\x1b", "ünï😀", "../..", "%00"}
	hostileBodies  = []struct{ what, body string }{
		{"[]", "[]"}, {"null", "null"}, {`"x"`, `"x"`}, {"{}", "{}"}, {"3", "3"}, {"truncated", `{"a":`},
		{"unknown field", `{"zz_unknown_field":1}`},
		{"deep nesting", strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)},
		{"2 MiB", `{"x":"` + strings.Repeat("a", 2<<20) + `"}`},
	}
)

// wrongTypes are JSON values of the wrong type for a schema type.
func wrongTypes(s map[string]any) []string {
	if _, ok := s["$ref"]; ok {
		return []string{`"x"`, `[1]`}
	}
	if _, ok := s["enum"]; ok {
		return []string{`12345`, `"not-one-of-them"`}
	}
	switch s["type"] {
	case "string":
		return []string{`12345`, `{"a":1}`}
	case "integer":
		return []string{`"12"`, `1.5`, `9223372036854775808`, `1e309`, `-1`}
	case "number":
		return []string{`"x"`, `1e309`}
	case "boolean":
		return []string{`"true"`, `1`}
	case "array":
		return []string{`{"a":1}`, `"x"`}
	case "object":
		return []string{`[1]`, `"x"`}
	}
	return []string{`[[[]]]`}
}

// hostileRequests builds the requests of one operation: each path
// parameter hostile in turn (the others valid), each query parameter
// hostile in turn, and for an operation with a body, hostile bodies and a
// wrong type for each field. full false keeps one request of each kind
// (a caller the route refuses before it reads anything).
func hostileRequests(op openAPIOperation, valid func(pattern, param string) string, full bool) []hostileRequest {
	fill := func(hostile, value string, raw bool) string {
		p := op.Path
		for _, prm := range op.Params {
			if prm.In != "path" {
				continue
			}
			v := url.PathEscape(valid(op.Path, prm.Name))
			if prm.Name == hostile {
				v = value
				if !raw {
					v = url.PathEscape(value)
				}
			}
			p = strings.ReplaceAll(p, "{"+prm.Name+"}", v)
		}
		return p
	}
	var out []hostileRequest
	keep := func(r hostileRequest, first bool) {
		if full || first {
			out = append(out, r)
		}
	}
	if op.Method == "GET" {
		// The plain read, with valid IDs: streams are opened this way.
		keep(hostileRequest{what: "plain", path: fill("", "", false)}, false)
	}
	for _, prm := range op.Params {
		switch prm.In {
		case "path":
			for i, h := range hostileIDs {
				keep(hostileRequest{what: fmt.Sprintf("path %s=%.40q", prm.Name, h.v), path: fill(prm.Name, h.v, h.raw)}, i == 0)
			}
		case "query":
			values := hostileStrings
			if prm.Type == "integer" || prm.Type == "number" {
				values = hostileNumbers
			}
			for i, v := range values {
				q := prm.Name + "=" + url.QueryEscape(v)
				if v == "%00" {
					q = prm.Name + "=%00"
				}
				keep(hostileRequest{what: fmt.Sprintf("query %s=%.40q", prm.Name, v), path: fill("", "", false) + "?" + q}, i == 0)
			}
		case "header":
			// Only where the header is sure to be checked before anything
			// runs (the dispatcher checks Idempotency-Key on every route),
			// or on a read: with valid IDs, an ignored header would let a
			// write through.
			if prm.Name != "Idempotency-Key" && op.Method != "GET" {
				continue
			}
			for i, v := range hostileHeaders {
				keep(hostileRequest{what: fmt.Sprintf("header %s=%.40q", prm.Name, v), path: fill("", "", false), header: [2]string{prm.Name, v}}, i == 0)
			}
		}
	}
	if op.Body != nil {
		for i, b := range hostileBodies {
			keep(hostileRequest{what: "body " + b.what, path: fill("", "", false), body: []byte(b.body)}, i == 0)
		}
		props, _ := op.Body["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s, _ := props[n].(map[string]any)
			for _, v := range wrongTypes(s) {
				keep(hostileRequest{what: fmt.Sprintf("body {%q: %s}", n, v), path: fill("", "", false), body: []byte(fmt.Sprintf(`{%q:%s}`, n, v))}, false)
			}
		}
	}
	return out
}

// stateDigest hashes the replicated state a request could change: all of
// it but the audit log and the request-ID dedup table (which record
// refused requests by design) and the index; it returns the index too.
func stateDigest(t *testing.T, f *fsm.FSM) (string, map[string]json.RawMessage, uint64) {
	t.Helper()
	var raw []byte
	var err error
	var index uint64
	f.Read(func(s *fsm.State) {
		index = s.Index
		// A shallow copy without the audit log and the dedup table, which
		// grow with every request (and are no part of the digest).
		cp := *s
		cp.Audit, cp.Dedup = nil, nil
		raw, err = json.Marshal(&cp)
	})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"index", "audit", "audit_seq", "dedup"} {
		delete(m, k)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, m[k])
	}
	return fmt.Sprintf("%x", h.Sum(nil)), m, index
}

// stateDigests hashes the state again only when it may have changed: the
// FSM changes its state only by applying a log entry (or a snapshot),
// which moves its index, so at the index last hashed the digest is the
// one computed then.
type stateDigests struct {
	f      *fsm.FSM
	index  uint64
	digest string
	fields map[string]json.RawMessage
}

func (d *stateDigests) get(t *testing.T) (string, map[string]json.RawMessage) {
	t.Helper()
	var index uint64
	d.f.Read(func(s *fsm.State) { index = s.Index })
	if d.fields == nil || index != d.index {
		d.digest, d.fields, d.index = stateDigest(t, d.f)
	}
	return d.digest, d.fields
}

// changedKeys names the top-level state fields that differ.
func changedKeys(a, b map[string]json.RawMessage) []string {
	var out []string
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestBadInputOnEveryRouteNever5xx walks every operation of
// docs/openapi.yaml (routes added later are in the walk by construction)
// as an admin, as a plain user (the owner of an app) and anonymously, with
// hostile numbers, IDs and bodies. No answer is 5xx, every error is a
// problem document, and a request answered 4xx changes no replicated state.
// Streams (text/event-stream) are read up to their first line, then left.
func TestBadInputOnEveryRouteNever5xx(t *testing.T) {
	tc, _, tok := appCluster(t)
	var a appOut
	if code, err := tc.call(0, "POST", "/api/v1/apps", tok["alice"], map[string]any{"catalog_id": "homepage", "hostname": "hostile"}, nil, &a); err != nil || code != 202 {
		t.Fatalf("deploy: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	var b backupOut
	if code, err := tc.call(0, "POST", "/api/v1/apps/"+a.ID+"/backups", tok["alice"], nil, nil, &b); err != nil || code != 202 {
		t.Fatalf("backup: %d %v", code, err)
	}
	tc.waitApp(tok["alice"], a.ID, "running")
	var alice struct {
		ID string `json:"id"`
	}
	if code, err := tc.call(0, "GET", "/api/v1/me", tok["alice"], nil, nil, &alice); err != nil || code != 200 {
		t.Fatalf("me: %d %v", code, err)
	}
	var res reservation
	if code, err := tc.call(0, "POST", "/api/v1/reservations", tc.token, map[string]any{"hostname": "spare", "node": "pve1"}, nil, &res); err != nil || code != 201 {
		t.Fatalf("reservation: %d %v", code, err)
	}
	valid := func(pattern, param string) string {
		switch {
		case strings.HasPrefix(pattern, "/api/v1/apps/") && param == "id":
			return a.ID
		case param == "bid":
			return b.ID
		case strings.HasPrefix(pattern, "/api/v1/users/") && param == "id":
			return alice.ID
		case strings.HasPrefix(pattern, "/api/v1/reservations/"):
			return res.ID
		case strings.HasPrefix(pattern, "/api/v1/catalog/"):
			return "homepage"
		case strings.HasPrefix(pattern, "/api/v1/nodes/"):
			return "pve1"
		}
		return "ghost"
	}

	f := tc.nodes[0].server().Cluster().FSM()
	// quiet waits until no app has an operation running (a request that
	// succeeded may have started one), so that the state is still.
	quiet := func() {
		waitFor(t, "no operation running", 30*time.Second, func() bool {
			busy := false
			f.Read(func(s *fsm.State) {
				for _, x := range s.Apps {
					busy = busy || x.Op != ""
				}
			})
			return !busy
		})
	}
	client := *tc.http
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := tc.nodes[0].url()
	send := func(token string, op openAPIOperation, r hostileRequest) (int, string, []byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		req, err := http.NewRequestWithContext(ctx, op.Method, base+r.path, body)
		if err != nil {
			return 0, "", nil, err
		}
		if r.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if r.header[0] != "" {
			req.Header.Set(r.header[0], r.header[1])
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "text/event-stream") {
			// A stream: its headers and first line are its answer.
			line, _ := bufio.NewReader(resp.Body).ReadBytes('\n')
			return resp.StatusCode, ct, line, nil
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, ct, raw, err
	}

	ops := readOpenAPI(t)
	if len(ops) < 50 {
		t.Fatalf("docs/openapi.yaml has %d operations; the walk read it wrong", len(ops))
	}
	start := time.Now()
	sent, refused, streams, cut := 0, 0, 0, 0
	quiet()
	state := &stateDigests{f: f}
	digest, before := state.get(t)
	for _, who := range []struct{ name, token string }{{"admin", tok["admin"]}, {"user", tok["alice"]}, {"anonymous", ""}} {
		for _, op := range ops {
			full := who.name == "admin" || op.Access == "public" || (who.name == "user" && op.Access != "admin")
			for _, r := range hostileRequests(op, valid, full) {
				st, ct, body, err := send(who.token, op, r)
				sent++
				if strings.HasPrefix(ct, "text/event-stream") {
					streams++
				}
				where := fmt.Sprintf("%s %s %s as %s (%s)", op.Method, op.Path, r.what, who.name, r.path[:min(len(r.path), 120)])
				switch {
				case err != nil && r.body != nil && len(r.body) > maxTestBody:
					// The server may close the connection of a body it
					// refuses before the client has sent it all.
					cut++
					continue
				case err != nil:
					t.Fatalf("%s: %v", where, err)
				case st >= 500:
					t.Fatalf("%s: %d %s", where, st, body)
				case st >= 400:
					refused++
					var p problemDoc
					if ct != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Status != st || !strings.HasPrefix(p.RequestID, "req_") || p.Detail == "" {
						t.Fatalf("%s: %d with %q, not a problem document: %s", where, st, ct, body)
					}
					if st == http.StatusBadRequest && notObject[r.what] && !strings.Contains(p.Detail, "body must be a JSON object") {
						t.Errorf("%s: 400 %q; want it to say the body must be a JSON object", where, p.Detail)
					}
					if d, after := state.get(t); d != digest {
						t.Fatalf("%s: refused with %d %s, yet the state changed: %v", where, st, p.Detail, changedKeys(before, after))
					}
				default:
					// It was taken (an empty PATCH, a new token): the
					// state may change; wait for it to settle.
					quiet()
					digest, before = state.get(t)
				}
			}
		}
	}
	t.Logf("%d hostile requests (%d refused, %d streams, %d cut off while sending) over %d operations in %s", sent, refused, streams, cut, len(ops), time.Since(start).Round(time.Millisecond))

	// A method a path does not have is 405 with Allow, in the one error
	// format, changing nothing; HEAD answers as GET does, without a body.
	methods := map[string]map[string]bool{}
	pathOp := map[string]openAPIOperation{}
	for _, op := range ops {
		if methods[op.Path] == nil {
			methods[op.Path] = map[string]bool{}
		}
		methods[op.Path][op.Method] = true
		pathOp[op.Path] = op
	}
	paths := make([]string, 0, len(methods))
	for p := range methods {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		have := methods[path]
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"} {
			if have[m] || (m == "HEAD" && !have["GET"]) {
				continue
			}
			op := pathOp[path]
			op.Method = m
			r := hostileRequests(op, valid, false)
			if len(r) == 0 {
				r = []hostileRequest{{path: path}}
			}
			st, ct, body, err := send(tok["admin"], op, hostileRequest{what: "method", path: strings.SplitN(r[0].path, "?", 2)[0]})
			switch {
			case err != nil:
				t.Fatalf("%s %s: %v", m, path, err)
			case m == "HEAD" && st >= 500:
				t.Fatalf("HEAD %s: %d", path, st)
			case m == "HEAD":
				// A HEAD of a stream ends with its headers: the connection
				// serves the next request.
				if st, _, _, err := send(tok["admin"], openAPIOperation{Method: "GET"}, hostileRequest{path: "/healthz"}); err != nil || st != 200 {
					t.Fatalf("GET /healthz after HEAD %s: %d %v", path, st, err)
				}
			case m != "HEAD" && (st != http.StatusMethodNotAllowed || ct != "application/problem+json"):
				t.Fatalf("%s %s, a method the path does not have: %d %q %s", m, path, st, ct, body)
			}
			if d, after := state.get(t); d != digest && st >= 400 {
				t.Fatalf("%s %s: refused with %d, yet the state changed: %v", m, path, st, changedKeys(before, after))
			}
		}
	}

	// Every list answers a page past the end, however far, with no items
	// and the same total as its first page.
	for _, op := range ops {
		paged := false
		for _, p := range op.Params {
			paged = paged || (p.In == "query" && p.Name == "page")
		}
		if op.Method != "GET" || !paged {
			continue
		}
		path := op.Path
		for _, p := range op.Params {
			if p.In == "path" {
				path = strings.ReplaceAll(path, "{"+p.Name+"}", url.PathEscape(valid(op.Path, p.Name)))
			}
		}
		var first, far struct {
			Items []json.RawMessage `json:"items"`
			Total int               `json:"total"`
			Page  int               `json:"page"`
		}
		if code, err := tc.call(0, "GET", path+"?per_page=100", tc.token, nil, nil, &first); err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, err)
		}
		if code, err := tc.call(0, "GET", path+"?per_page=100&page=9223372036854775807", tc.token, nil, nil, &far); err != nil || code != 200 ||
			far.Items == nil || len(far.Items) != 0 || far.Total != first.Total || far.Page != 9223372036854775807 {
			t.Errorf("GET %s page 2^63-1: %d %v: %d items, total %d (first page: total %d)", path, code, err, len(far.Items), far.Total, first.Total)
		}
	}
}

// notObject are the hostile bodies that are JSON but not an object.
var notObject = map[string]bool{"body []": true, "body null": true, `body "x"`: true, "body 3": true}

// maxTestBody is the API's body limit (1 MiB): larger bodies are refused
// while being read.
const maxTestBody = 1 << 20
