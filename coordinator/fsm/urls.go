package fsm

import (
	"net"
	"strconv"
)

// AppURL is an address people open an app at.
type AppURL struct {
	Name string `json:"name"` // the catalog port's name
	URL  string `json:"url"`
	Main bool   `json:"main"`
}

// AppURLs builds an app's URLs from its node's address and its public
// ports: one per catalog port that has a URL scheme (catalog.Port's
// URLScheme), at the public port the registry gave it (the app's public
// ports are its entry's ports, in order). The health check's port is the
// main one, or else the first. An adopted app has one public port,
// forwarded to the port its adoption named, opened with http. There are
// none while the node's address is unknown or the app holds no ports.
func (s *State) AppURLs(a App) []AppURL {
	out := []AppURL{}
	n, ok := s.Nodes[a.Node]
	if !ok || n.Address == "" || a.ReservationID == "" {
		return out
	}
	at := func(scheme string, port int) string {
		return scheme + "://" + net.JoinHostPort(n.Address, strconv.Itoa(port))
	}
	if a.Adopted {
		if len(a.PublicPorts) > 0 {
			out = append(out, AppURL{Name: "port", URL: at("http", a.PublicPorts[0]), Main: true})
		}
		return out
	}
	e, ok := s.CatalogEntry(a.CatalogID)
	if !ok {
		return out
	}
	main := 0
	for i, p := range e.Ports {
		scheme := p.URLScheme()
		if i >= len(a.PublicPorts) || scheme == "" {
			continue
		}
		if p.Name == e.HealthCheck.Port {
			main = len(out)
		}
		out = append(out, AppURL{Name: p.Name, URL: at(scheme, a.PublicPorts[i])})
	}
	if len(out) > 0 {
		out[main].Main = true
	}
	return out
}
