package pvesim

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

var pveamSpecs = map[string]spec{
	"available": {opts: map[string]optKind{"section": optString}, usage: "pveam available [OPTIONS]"},
	"list":      {args: []string{"storage"}, usage: "pveam list <storage>"},
	"download":  {args: []string{"storage", "template"}, usage: "pveam download <storage> <template>"},
	"update":    {usage: "pveam update"},
}

type pveam struct {
	st             *Store
	stdout, stderr io.Writer
}

func (c *pveam) run(args []string) int {
	return runTool("pveam", pveamSpecs, args, c.stderr, c.dispatch)
}

// templateSize is the simulated size of every template, in bytes.
const templateSize = 129_446_297

func (c *pveam) dispatch(cmd string, sp spec, p parsed) error {
	switch cmd {
	case "update":
		fmt.Fprintln(c.stdout, "update successful")
		return nil
	case "available":
		return c.st.View(func(n *Node) error {
			if s := p.opts["section"]; s != "" && s != "system" {
				return nil
			}
			for _, t := range n.Available {
				fmt.Fprintf(c.stdout, "%-15s %-60s %s\n", "system", t, "amd64")
			}
			return nil
		})
	case "list":
		return c.st.View(func(n *Node) error {
			s, ok := n.Storage(p.pos[0])
			if !ok {
				return fail("storage '%s' does not exist", p.pos[0])
			}
			if !s.Supports("vztmpl") {
				return fail("Storage does not support templates!")
			}
			fmt.Fprintf(c.stdout, "%-60s %-6s\n", "NAME", "SIZE")
			for _, t := range n.Templates[s.ID] {
				fmt.Fprintf(c.stdout, "%-60s %-4.2fMB\n", s.ID+":vztmpl/"+t, float64(templateSize)/(1<<20))
			}
			return nil
		})
	case "download":
		storage, tmpl := p.pos[0], p.pos[1]
		err := c.st.run(work{typ: "download", id: tmpl,
			begin: func(n *Node) error {
				if !slices.Contains(n.Available, tmpl) {
					return paramErrors{"template": "no such template"}.err(sp.usage)
				}
				if s, ok := n.Storage(storage); !ok || !s.Supports("vztmpl") {
					return fail("storage '%s' does not support templates", storage)
				}
				return nil
			},
			body: func(n *Node, t *task) error {
				t.log("downloading http://download.proxmox.com/images/system/%s to /var/lib/vz/template/cache/%s", tmpl, tmpl)
				t.log("download of '%s' to '/var/lib/vz/template/cache/%s' finished", tmpl, tmpl)
				if !slices.Contains(n.Templates[storage], tmpl) {
					n.Templates[storage] = append(n.Templates[storage], tmpl)
				}
				return nil
			},
		}, func(line string) { fmt.Fprintln(c.stdout, line) })
		var tf *taskFailure
		if errors.As(err, &tf) {
			// pveam download has no $upid_exit: a failed worker prints its
			// error and exits 0.
			fmt.Fprintln(c.stderr, err)
			return nil
		}
		return err
	}
	return fail("command %s not simulated", cmd)
}
