package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/catalog"
)

// offerVersion makes the server's catalog offer version of entry id, as
// a reload of a source with a newer entry would.
func offerVersion(t *testing.T, ts testServer, id, version string) {
	t.Helper()
	var cs fsm.CatalogState
	ts.srv.Cluster().FSM().Read(func(s *fsm.State) {
		cs = *s.Catalog
		cs.Entries = append([]catalog.Entry(nil), s.Catalog.Entries...)
	})
	for i := range cs.Entries {
		if cs.Entries[i].ID == id {
			cs.Entries[i].Version = version
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ts.srv.Cluster().Propose(ctx, fsm.Command{Type: fsm.CmdSetCatalog, RequestID: "offer-" + id + "-" + version, SetCatalog: &cs})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("offer %s %s: %v", id, version, err)
	}
}

// TestAppUpdateCommands: app list shows the newer version in UPDATE and
// --update-available keeps only such apps; app update refuses a version
// the catalog does not offer and moves the app with --version; app
// configure sets the update policy and says what is wrong with a bad one.
func TestAppUpdateCommands(t *testing.T) {
	ts, token := startServerWithNode(t)
	if code, out, errs := ctl(t, ts, token, "app", "deploy", "homepage", "dash", "--wait"); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errs)
	}
	if code, out, _ := ctl(t, ts, token, "app", "list"); code != 0 || !strings.Contains(out, "UPDATE") {
		t.Fatalf("app list: %d %s", code, out)
	}
	if code, out, _ := ctl(t, ts, token, "app", "list", "--update-available"); code != 0 || strings.Contains(out, "dash") {
		t.Fatalf("app list --update-available with nothing newer: %d %s", code, out)
	}
	if code, _, errs := ctl(t, ts, token, "app", "update", "dash"); code == 0 || !strings.Contains(errs, "already at version 0.10.9") {
		t.Fatalf("update with nothing newer: %d %s", code, errs)
	}
	offerVersion(t, ts, "homepage", "0.11.0")
	if code, out, _ := ctl(t, ts, token, "app", "list", "--update-available"); code != 0 || !strings.Contains(out, "dash") || !strings.Contains(out, "0.11.0") {
		t.Fatalf("app list --update-available: %d %s", code, out)
	}
	if code, _, errs := ctl(t, ts, token, "app", "update", "dash", "--version", "1.0"); code == 0 || !strings.Contains(errs, "offers 0.11.0") {
		t.Fatalf("update --version 1.0: %d %s", code, errs)
	}
	if code, out, errs := ctl(t, ts, token, "app", "update", "dash", "--version", "0.11.0", "--wait"); code != 0 || !strings.Contains(out, "update: done; the app runs version 0.11.0") {
		t.Fatalf("update --version 0.11.0: %d %s %s", code, out, errs)
	}
	if code, out, _ := ctl(t, ts, token, "app", "list"); code != 0 || strings.Contains(out, "0.11.0") {
		t.Fatalf("app list after the update: %d %s", code, out)
	}
	if code, out, errs := ctl(t, ts, token, "app", "configure", "dash", "--auto-update", "auto", "--maintenance-window", "sun 03:00"); code != 0 ||
		!strings.Contains(out, "auto") || !strings.Contains(out, "sun 03:00 (60 min)") {
		t.Fatalf("configure --auto-update: %d %s %s", code, out, errs)
	}
	if code, _, errs := ctl(t, ts, token, "app", "configure", "dash", "--auto-update", "always"); code == 0 || !strings.Contains(errs, "auto_update: must be off, notify or auto") {
		t.Fatalf("configure --auto-update always: %d %s", code, errs)
	}
}
