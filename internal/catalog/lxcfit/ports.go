// Ports: the published ports of the services, the main web port and the
// health check.

package lxcfit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/proximity-ve/proximity/internal/catalog"
)

type published struct {
	service, port, proto string
	target               int
}

// ports rewrites every service's ports as host:container/proto (the host
// port is the port inside the app's container that Proximity forwards
// to), and names the catalog ports: the web interface is "web".
func (f *fitter) ports(svcs map[string]any, names []string) ([]catalog.Port, catalog.HealthCheck) {
	a := f.app
	var all []published
	for _, name := range names {
		svc := svcs[name].(map[string]any)
		field := "services." + name + ".ports"
		list, _ := svc["ports"].([]any)
		if name == a.Main && a.MainPort > 0 && a.MainTarget > 0 {
			found := false
			for _, p := range list {
				if pp, ok := parsePort(p); ok && pp.published == strconv.Itoa(a.MainPort) && pp.proto == "tcp" {
					found = true
				}
			}
			if !found {
				list = append(list, fmt.Sprintf("%d:%d/tcp", a.MainPort, a.MainTarget))
			}
		}
		var out []any
		for _, p := range list {
			pp, ok := parsePort(p)
			if !ok {
				f.degrade(field, "the port %v is not one the importer can publish (a range or an unreadable mapping); it is dropped", p)
				continue
			}
			if pp.loopback {
				out = append(out, pp.hostIP+":"+pp.published+":"+strconv.Itoa(pp.target)+"/"+pp.proto)
				continue
			}
			out = append(out, pp.published+":"+strconv.Itoa(pp.target)+"/"+pp.proto)
			all = append(all, published{service: name, port: pp.published, proto: pp.proto, target: pp.target})
		}
		if len(out) == 0 {
			delete(svc, "ports")
		} else {
			svc["ports"] = out
		}
	}
	main := ""
	if a.MainPort > 0 {
		want := strconv.Itoa(a.MainPort)
		for _, p := range all {
			if p.port == want && p.proto == "tcp" {
				main = want
			}
		}
		if main == "" {
			f.reject("port", "the web port %d is published by no service", a.MainPort)
			return nil, catalog.HealthCheck{}
		}
	} else {
		for _, p := range all {
			if p.service == a.Main && p.proto == "tcp" {
				main = p.port
				break
			}
		}
		if main == "" {
			f.reject("port", "the main service %s publishes no TCP port: there is no web interface to open or to check", a.Main)
			return nil, catalog.HealthCheck{}
		}
	}
	if a.Scheme == "https" {
		f.reject("scheme", "the web interface speaks only HTTPS, and Proximity's health check is plain HTTP")
		return nil, catalog.HealthCheck{}
	}
	var ports []catalog.Port
	seen := map[string]bool{}
	for _, p := range all {
		key := p.port + "/" + p.proto
		if seen[key] {
			continue
		}
		seen[key] = true
		n, _ := strconv.Atoi(p.port)
		if p.port == main && p.proto == "tcp" {
			ports = append([]catalog.Port{{Name: "web", Internal: n, Protocol: "tcp", HTTP: true}}, ports...)
			continue
		}
		ports = append(ports, catalog.Port{Name: fmt.Sprintf("%s-%d", p.proto, n), Internal: n, Protocol: p.proto})
	}
	hp := a.HealthPath
	if hp == "" || !healthPathRE.MatchString(hp) {
		hp = "/"
	}
	return ports, catalog.HealthCheck{Port: "web", Path: hp, TimeoutSec: 300}
}

// healthPathRE is what the agent accepts as the health check's path.
var healthPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*$`)

type portSpec struct {
	hostIP, published, proto string
	target                   int
	loopback                 bool
}

// parsePort reads a Compose port mapping, short ("[ip:]host:container[/proto]",
// "container") or long ({target, published, protocol, host_ip}); a port
// without a published port publishes its container port.
func parsePort(v any) (portSpec, bool) {
	var ps portSpec
	ps.proto = "tcp"
	switch t := v.(type) {
	case map[string]any:
		n, ok := portNum(withDefaults(str(t["target"])))
		if !ok {
			return ps, false
		}
		ps.target = n
		ps.published = withDefaults(str(t["published"]))
		ps.hostIP = str(t["host_ip"])
		if p := str(t["protocol"]); p != "" {
			ps.proto = p
		}
	default:
		s := withDefaults(str(v))
		if i := strings.LastIndex(s, "/"); i >= 0 {
			s, ps.proto = s[:i], s[i+1:]
		}
		parts := strings.Split(s, ":")
		var n int
		var ok bool
		switch len(parts) {
		case 1:
			n, ok = portNum(parts[0])
		case 2:
			ps.published = parts[0]
			n, ok = portNum(parts[1])
		case 3:
			ps.hostIP, ps.published = parts[0], parts[1]
			n, ok = portNum(parts[2])
		}
		if !ok {
			return ps, false
		}
		ps.target = n
	}
	if ps.proto != "tcp" && ps.proto != "udp" {
		return ps, false
	}
	if ps.published == "" || strings.Contains(ps.published, "$") {
		ps.published = strconv.Itoa(ps.target)
	}
	n, ok := portNum(ps.published)
	if !ok {
		return ps, false
	}
	ps.published = strconv.Itoa(n)
	switch ps.hostIP {
	case "", "0.0.0.0", "::", "[::]":
		ps.hostIP = ""
	default:
		ps.loopback = true
	}
	return ps, true
}

func portNum(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil && n >= 1 && n <= 65535
}
