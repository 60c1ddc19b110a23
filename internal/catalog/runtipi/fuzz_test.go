package runtipi

import "testing"

// FuzzImportRuntipi reads any config.json with any docker-compose.json
// (or, when that is empty, docker-compose.yml): no panic, every rejection
// has a reason, and every entry kept passes the catalog's validation. The
// seed corpus is in testdata/fuzz.
func FuzzImportRuntipi(f *testing.F) {
	f.Fuzz(func(t *testing.T, config, compose []byte, yml bool) {
		name := "docker-compose.json"
		if yml {
			name = "docker-compose.yml"
		}
		e, problems, ok := ImportApp("apps/fuzz/config.json", "fuzz", config, map[string][]byte{name: compose})
		for _, p := range problems {
			if p.Reason == "" || p.Field == "" {
				t.Errorf("a problem without field or reason: %+v", p)
			}
		}
		if !ok {
			for _, p := range problems {
				if p.Rejected {
					return
				}
			}
			t.Fatalf("not imported, and no rejection says why: %+v", problems)
		}
		if err := e.Validate("fuzz"); err != nil {
			t.Fatalf("an imported entry does not validate: %v\n%s", err, e.Compose)
		}
	})
}
