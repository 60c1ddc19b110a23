package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSettingsSetNetworkDNSKeepsSubnet protects the finding "`settings
// set-network --dns 9.9.9.9` erased subnet, gateway and bridge": the
// settings commands send a PATCH of the flags given. It also covers
// `settings registry` (show and change one bound) and set-resources.
func TestSettingsSetNetworkDNSKeepsSubnet(t *testing.T) {
	ts, token := startServer(t)
	if code, _, errs := ctl(t, ts, token, "settings", "set-network", "--subnet", "10.5.0.0/24", "--gateway", "10.5.0.1", "--dns", "10.5.0.1", "--bridge", "vmbr0"); code != 0 {
		t.Fatalf("set-network: %d %s", code, errs)
	}
	code, out, errs := ctl(t, ts, token, "settings", "set-network", "--dns", "9.9.9.9", "-o", "json")
	var n network
	if code != 0 || json.Unmarshal([]byte(out), &n) != nil {
		t.Fatalf("set-network --dns: %d %s %s", code, out, errs)
	}
	if n.Subnet != "10.5.0.0/24" || n.Gateway != "10.5.0.1" || n.Bridge != "vmbr0" || strings.Join(n.DNS, ",") != "9.9.9.9" {
		t.Fatalf("set-network --dns changed other settings: %+v", n)
	}
	if code, _, errs := ctl(t, ts, token, "settings", "set-network"); code == 0 || !strings.Contains(errs, "--dns") {
		t.Fatalf("set-network without flags: %d %s", code, errs)
	}

	// The registry's pools: shown, and one bound changed.
	if code, out, _ := ctl(t, ts, token, "settings", "registry"); code != 0 || !strings.Contains(out, "10000-99999") || !strings.Contains(out, "30000-30999") {
		t.Fatalf("settings registry: %d %s", code, out)
	}
	code, out, _ = ctl(t, ts, token, "settings", "registry", "--port-max", "31999", "-o", "json")
	var r registrySettings
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.PortMax != 31999 || r.PortMin != 30000 || r.VMIDMin != 10000 || r.VMIDMax != 99999 {
		t.Fatalf("settings registry --port-max: %d %s", code, out)
	}
	if code, _, errs := ctl(t, ts, token, "settings", "registry", "--port-min", "40000"); code != 1 || !strings.Contains(errs, "port range") {
		t.Fatalf("registry with min above max: %d %s", code, errs)
	}

	// set-resources keeps what it is not given.
	if code, _, errs := ctl(t, ts, token, "settings", "set-resources", "--storage", "fast-store"); code != 0 {
		t.Fatalf("set-resources --storage: %d %s", code, errs)
	}
	if code, out, errs := ctl(t, ts, token, "settings", "set-resources", "--swap-mb", "256"); code != 0 || !strings.Contains(out, "fast-store") || !strings.Contains(out, "256") {
		t.Fatalf("set-resources --swap-mb: %d %s %s", code, out, errs)
	}
}

// TestSettingsPlacementCommandLine: `settings placement` shows the
// defaults and changes only the flags given.
func TestSettingsPlacementCommandLine(t *testing.T) {
	ts, token := startServer(t)
	if code, out, _ := ctl(t, ts, token, "settings", "placement"); code != 0 || !strings.Contains(out, "spread") {
		t.Fatalf("settings placement: %d %s", code, out)
	}
	code, out, errs := ctl(t, ts, token, "settings", "placement", "--strategy", "pack", "-o", "json")
	var p placementSettings
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Strategy != "pack" || p.MemoryOvercommit != 1 || p.CPUOvercommit != 4 {
		t.Fatalf("settings placement --strategy pack: %d %s %s", code, out, errs)
	}
	code, out, _ = ctl(t, ts, token, "settings", "placement", "--memory-overcommit", "1.5", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Strategy != "pack" || p.MemoryOvercommit != 1.5 {
		t.Fatalf("settings placement --memory-overcommit: %d %s", code, out)
	}
	if code, _, errs := ctl(t, ts, token, "settings", "placement", "--cpu-overcommit", "0.5"); code != 1 || !strings.Contains(errs, "cpu_overcommit") {
		t.Fatalf("cpu overcommit below 1: %d %s", code, errs)
	}
}
