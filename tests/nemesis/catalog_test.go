package nemesis

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proximity-ve/proximity/internal/pvesim"
)

// The catalog the coordinators serve is a directory the test owns
// (--catalog-dir, the builtin source): the starter entries of the
// workload's apps. During the run a publisher writes a newer version of
// one entry (its version and its image's tag) and asks the cluster to
// reload the catalog, as an admin who maintains a catalog directory
// would; users then update their apps to what the catalog offers.

// composePath is where an app's Compose document lives in its container.
const composePath = "/opt/proximity/app/compose.yaml"

// catalogPub writes the catalog directory and remembers every version
// each entry has had.
type catalogPub struct {
	w   *world
	dir string

	wl *workload // set once the workload starts

	mu       sync.Mutex
	text     map[string]string   // entry → its current file
	versions map[string][]string // entry → every version written, oldest first
}

// newCatalog copies the workload's starter entries into dir.
func newCatalog(w *world, dir string) (*catalogPub, error) {
	c := &catalogPub{w: w, dir: dir, text: map[string]string{}, versions: map[string][]string{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, id := range catalogApps {
		b, err := os.ReadFile(filepath.Join("..", "..", "internal", "catalog", "starter", id+".yaml"))
		if err != nil {
			return nil, err
		}
		v := versionOf(string(b))
		if v == "" {
			return nil, fmt.Errorf("starter entry %s: no version", id)
		}
		c.text[id], c.versions[id] = string(b), []string{v}
		if err := c.write(id); err != nil {
			return nil, err
		}
	}
	return c, nil
}

var versionLine = regexp.MustCompile(`(?m)^version: "([^"]+)"$`)

func versionOf(text string) string {
	m := versionLine.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

// write replaces entry id's file at once (the reload reads *.yaml: the
// temporary name is not one).
func (c *catalogPub) write(id string) error {
	tmp := filepath.Join(c.dir, "."+id+".tmp")
	if err := os.WriteFile(tmp, []byte(c.text[id]), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.dir, id+".yaml"))
}

// bump writes the next patch version of entry id (the version line and
// the image tag, which carry the same string) and answers it.
func (c *catalogPub) bump(id string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.versions[id][len(c.versions[id])-1]
	parts := strings.Split(old, ".")
	n, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return "", fmt.Errorf("version %s of %s: %v", old, id, err)
	}
	parts[len(parts)-1] = strconv.Itoa(n + 1)
	v := strings.Join(parts, ".")
	c.text[id] = strings.ReplaceAll(c.text[id], old, v)
	if err := c.write(id); err != nil {
		return "", err
	}
	c.versions[id] = append(c.versions[id], v)
	return v, nil
}

func (c *catalogPub) known(id, v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.versions[id], v)
}

// publisher writes a newer version of a random entry every 6 to 15 s and
// reloads the catalog through a random server (retried with its
// idempotency key until answered), until stop.
func (c *catalogPub) publisher(seed uint64, stop chan struct{}, ops *counters) {
	w := c.w
	rng := rand.New(rand.NewPCG(seed, 0x636174))
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(6000+rng.IntN(9000)) * time.Millisecond):
		}
		id := catalogApps[rng.IntN(len(catalogApps))]
		v, err := c.bump(id)
		if err != nil {
			w.logf("catalog: %v", err)
			continue
		}
		st, raw := w.call(w.token, "POST", "/api/v1/catalog/reload", nil, fmt.Sprintf("reload-%d-%d", n, seed), 30*time.Second)
		if st != 200 {
			ops.add("unanswered/catalog-reload")
			w.logf("catalog: %s %s written; reload: %d %s", id, v, st, raw)
			continue
		}
		ops.add("catalog-reload")
		w.logf("catalog: %s %s published", id, v)
	}
}

var imageTag = regexp.MustCompile(`(?m)^\s*image:\s*\S+:(\S+)\s*$`)

// checkVersions: every app records a version its catalog entry has had,
// and the Compose document in every running or stopped app's container
// runs the image of that version (an update moved both or neither).
func (w *world) checkVersions(apps []appOut, c *catalogPub, fail func(string, ...any)) {
	compose := map[string]string{} // "node/vmid" → the container's compose file
	for n := 0; n < agents; n++ {
		node := fmt.Sprintf("pve%d", n+1)
		st, err := w.simStore(n)
		if err != nil {
			fail("%s: %v", node, err)
			continue
		}
		_ = st.View(func(s *pvesim.Node) error {
			for vmid, ct := range s.CTs {
				compose[fmt.Sprintf("%s/%d", node, vmid)] = ct.Files[composePath]
			}
			return nil
		})
	}
	for _, a := range apps {
		if !c.known(a.CatalogID, a.CatalogVersion) {
			fail("app %s (%s) records version %q of %s, which the catalog never offered", a.ID, a.Hostname, a.CatalogVersion, a.CatalogID)
		}
		if a.Operation != "" || (a.Status != "running" && a.Status != "stopped") {
			continue
		}
		doc, ok := compose[fmt.Sprintf("%s/%d", a.Node, a.VMID)]
		if !ok {
			continue // checkNodes reports the missing container
		}
		m := imageTag.FindStringSubmatch(doc)
		switch {
		case m == nil:
			fail("app %s (%s): its container %s/%d has no Compose document with an image", a.ID, a.Hostname, a.Node, a.VMID)
		case m[1] != a.CatalogVersion:
			fail("app %s (%s) records version %s, the Compose document in %s/%d runs %s", a.ID, a.Hostname, a.CatalogVersion, a.Node, a.VMID, m[1])
			w.dumpAppLog(a)
		}
	}
}

// dumpAppLog copies an app's deployment log into nemesis.log.
func (w *world) dumpAppLog(a appOut) {
	st, raw := w.call(w.token, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", nil, "", 30*time.Second)
	var page struct {
		Items []struct {
			At  time.Time `json:"at"`
			Msg string    `json:"msg"`
		} `json:"items"`
	}
	if st != 200 || json.Unmarshal(raw, &page) != nil {
		w.logf("log of app %s: %d %.200s", a.ID, st, raw)
		return
	}
	for _, l := range page.Items {
		w.logf("log of app %s (%s): %s %s", a.ID, a.Hostname, l.At.Format("15:04:05.000"), l.Msg)
	}
}

// updateOutcomes counts, in the logs of the apps still there, the updates
// that ended done and those that failed (and rolled back).
func (w *world) updateOutcomes(apps []appOut) (done, failed int) {
	for _, a := range apps {
		st, raw := w.call(w.token, "GET", "/api/v1/apps/"+a.ID+"/logs?limit=1000", nil, "", 30*time.Second)
		var page struct {
			Items []struct {
				Msg string `json:"msg"`
			} `json:"items"`
		}
		if st != 200 || json.Unmarshal(raw, &page) != nil {
			continue
		}
		for _, l := range page.Items {
			switch {
			case strings.HasPrefix(l.Msg, "update: done"):
				done++
			case strings.HasPrefix(l.Msg, "update failed"):
				failed++
				w.logf("app %s (%s): %s", a.ID, a.Hostname, l.Msg)
			}
		}
	}
	return done, failed
}
