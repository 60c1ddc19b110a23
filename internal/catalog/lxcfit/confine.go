// What an unprivileged LXC container cannot give a service: devices,
// capabilities, security options, host networking, store proxies and host
// paths, each rejected or degraded with its reason.

package lxcfit

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// safeCaps are the capabilities a service may add: Docker's default set,
// which every container already holds, so adding one changes nothing and
// it works in an unprivileged LXC container.
var safeCaps = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true,
	"KILL": true, "MKNOD": true, "NET_BIND_SERVICE": true, "NET_RAW": true, "SETFCAP": true,
	"SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true,
}

// SafeCapabilities lists the capabilities an imported service may add.
func SafeCapabilities() []string { return sortedKeys(safeCaps) }

func (f *fitter) devices(field string, svc map[string]any) {
	devs, _ := svc["devices"].([]any)
	var keep []any
	for _, d := range devs {
		src, _, _ := strings.Cut(str(d), ":")
		if m, ok := d.(map[string]any); ok {
			src = str(m["source"])
		}
		if strings.HasPrefix(src, "/dev/dri") {
			f.degrade(field+".devices", "the GPU %s is not passed to an unprivileged container: no hardware acceleration", src)
			continue
		}
		f.reject(field+".devices", "needs the host device %s, which an unprivileged LXC container does not have", src)
		keep = append(keep, d)
	}
	if len(devs) > 0 {
		if len(keep) == 0 {
			delete(svc, "devices")
		} else {
			svc["devices"] = keep
		}
	}
	deploy, _ := svc["deploy"].(map[string]any)
	res, _ := deploy["resources"].(map[string]any)
	resv, _ := res["reservations"].(map[string]any)
	if _, ok := resv["devices"]; ok {
		delete(resv, "devices")
		f.degrade(field+".deploy.resources.reservations.devices", "reserved devices (a GPU) are not available in the container: the service runs without them")
	}
}

func (f *fitter) capabilities(field string, svc map[string]any) {
	caps, _ := svc["cap_add"].([]any)
	for _, c := range caps {
		name := strings.TrimPrefix(strings.ToUpper(str(c)), "CAP_")
		if !safeCaps[name] {
			f.reject(field+".cap_add", "the capability %s is beyond what an unprivileged LXC container grants (safe: %s)", name, strings.Join(SafeCapabilities(), ", "))
		}
	}
}

func (f *fitter) securityOpt(field string, svc map[string]any) {
	opts, _ := svc["security_opt"].([]any)
	if len(opts) == 0 {
		return
	}
	var keep []any
	for _, o := range opts {
		s := str(o)
		if strings.HasPrefix(s, "no-new-privileges") {
			keep = append(keep, o)
			continue
		}
		f.degrade(field+".security_opt", "%q dropped: the service runs under Docker's default confinement", s)
	}
	if len(keep) == 0 {
		delete(svc, "security_opt")
	} else {
		svc["security_opt"] = keep
	}
}

func (f *fitter) network(name string, svc map[string]any) {
	field := "services." + name + ".network_mode"
	switch mode := str(svc["network_mode"]); {
	case mode == "bridge":
		delete(svc, "network_mode") // Compose's default network does the same
	case mode == "host":
		known := f.app.HostPorts[name]
		if len(known) == 0 {
			if name == f.app.Main {
				f.reject(field, "network_mode: host, and the store names no port to publish instead")
			} else {
				delete(svc, "network_mode")
				f.degrade(field, "network_mode: host dropped: the service has no port the store names, so it publishes none")
			}
			return
		}
		delete(svc, "network_mode")
		ports, _ := svc["ports"].([]any)
		for _, p := range known {
			num, proto, _ := strings.Cut(p, "/")
			ports = append(ports, num+":"+num+"/"+proto)
		}
		svc["ports"] = ports
		f.degrade(field, "network_mode: host replaced by publishing %s: discovery by broadcast (mDNS, SSDP, DLNA) does not reach the network", strings.Join(known, ", "))
	}
}

var proxyLabelRE = regexp.MustCompile(`^(traefik|runtipi|tipi|casaos)\.`)

func (f *fitter) labels(field string, svc map[string]any) {
	dropped := 0
	switch t := svc["labels"].(type) {
	case map[string]any:
		for k := range t {
			if proxyLabelRE.MatchString(k) {
				delete(t, k)
				dropped++
			}
		}
		if len(t) == 0 {
			delete(svc, "labels")
		}
	case []any:
		var keep []any
		for _, l := range t {
			k, _, _ := strings.Cut(str(l), "=")
			if proxyLabelRE.MatchString(k) {
				dropped++
				continue
			}
			keep = append(keep, l)
		}
		if len(keep) == 0 {
			delete(svc, "labels")
		} else {
			svc["labels"] = keep
		}
	}
	if dropped > 0 {
		f.degrade(field+".labels", "%d label(s) of the store's reverse proxy removed: the app is reached on its own port", dropped)
	}
}

// systemPaths are host folders a service may not mount: they are the
// container's own system, which the app would read or change in place of
// the host's.
var systemPaths = []string{"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root",
	"/run", "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/run"}

var dockerSockets = map[string]bool{"/var/run/docker.sock": true, "/run/docker.sock": true}

func under(p, prefix string) bool {
	return p == prefix || prefix == "/" || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/")
}

// hostPath maps a bind mount's source. drop removes the mount.
func (f *fitter) hostPath(field, src string) (dst string, drop bool) {
	data := DataDir(f.app.ID)
	src = withDefaults(src)
	if strings.HasPrefix(src, "./") || src == "." || strings.HasPrefix(src, "../") || src == ".." {
		// Relative to the app's folder, which is its data folder here;
		// one that climbs out of it is refused like a system path.
		if dst := path.Join(data, src); under(dst, data) {
			return dst, false
		}
		f.reject(field, "the host folder %q leaves the app's data folder", src)
		return src, false
	}
	if strings.HasPrefix(src, "~") || strings.Contains(src, "${") {
		f.reject(field, "the host folder %q is not one the importer can place", src)
		return src, false
	}
	clean := path.Clean(src)
	if under(clean, data) {
		return clean, false
	}
	for _, m := range f.app.Mounts {
		if under(clean, m.Prefix) {
			dst := path.Join(data, m.Sub, strings.TrimPrefix(clean, strings.TrimSuffix(m.Prefix, "/")))
			if m.Reason != "" {
				f.degrade(field, "%s: %s becomes %s", m.Reason, src, dst)
			}
			return dst, false
		}
	}
	switch {
	case dockerSockets[clean]:
		f.degrade(field, "the Docker socket is the app's own container's Docker: the app sees and manages only its own containers, not the host's")
		return clean, false
	case clean == "/etc/localtime" || clean == "/etc/timezone" || clean == "/usr/share/zoneinfo":
		f.degrade(field, "the host's time zone file %s is not mounted: set the time zone with TZ where the app reads it", clean)
		return "", true
	case under(clean, "/dev/dri"):
		f.degrade(field, "the GPU %s is not passed to an unprivileged container: no hardware acceleration", clean)
		return "", true
	}
	for _, s := range systemPaths {
		if under(clean, s) && !(s == "/" && clean != "/") {
			f.reject(field, "mounts the host system path %s, which an app in its own container cannot use", clean)
			return src, false
		}
	}
	dst = path.Join(data, "host", clean)
	if !under(dst, data) {
		// A relative source ("$X/../..") that climbs out.
		f.reject(field, "the host folder %q leaves the app's data folder", src)
		return src, false
	}
	f.degrade(field, "the host folder %s becomes the app's folder %s", clean, dst)
	return dst, false
}

func (f *fitter) volumes(field string, svc map[string]any) {
	vols, _ := svc["volumes"].([]any)
	if len(vols) == 0 {
		return
	}
	var keep []any
	for i, v := range vols {
		vf := fmt.Sprintf("%s.volumes[%d]", field, i)
		switch t := v.(type) {
		case string:
			parts := strings.Split(t, ":")
			if len(parts) < 2 || !(strings.HasPrefix(parts[0], "/") || strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "$") || strings.HasPrefix(parts[0], "~")) {
				keep = append(keep, v) // a named volume or an anonymous one
				continue
			}
			dst, drop := f.hostPath(vf, parts[0])
			if drop {
				continue
			}
			parts[0] = dst
			keep = append(keep, strings.Join(parts, ":"))
		case map[string]any:
			if typ := str(t["type"]); typ != "bind" && typ != "" {
				keep = append(keep, v)
				continue
			}
			src := str(t["source"])
			if src == "" || !(strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "$") || strings.HasPrefix(src, "~")) {
				keep = append(keep, v)
				continue
			}
			dst, drop := f.hostPath(vf, src)
			if drop {
				continue
			}
			t["source"] = dst
			keep = append(keep, t)
		default:
			f.reject(vf, "not a volume")
		}
	}
	if len(keep) == 0 {
		delete(svc, "volumes")
	} else {
		svc["volumes"] = keep
	}
}
