package casaos

import (
	"testing"
)

// FuzzImportCasaOS reads any document as an app's docker-compose.yml: no
// panic, every rejection has a reason, and every entry kept passes the
// catalog's validation. The seed corpus is in testdata/fuzz.
func FuzzImportCasaOS(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, problems, ok := ImportApp("Apps/Fuzz/docker-compose.yml", "Fuzz", data)
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
