package main

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// changed builds a JSON merge patch of the flags given on the command
// line: flags maps a flag's name to the variable it sets, and the patch
// holds each changed flag's value under its name with "-" as "_". Flags
// not given are left out, so the settings they stand for keep their
// values.
func changed(c *cobra.Command, flags map[string]any) map[string]any {
	patch := map[string]any{}
	for name, p := range flags {
		if c.Flags().Changed(name) {
			patch[strings.ReplaceAll(name, "-", "_")] = reflect.ValueOf(p).Elem().Interface()
		}
	}
	return patch
}

// registrySettings are the pools the registry allocates from.
type registrySettings struct {
	VMIDMin int `json:"vmid_min"`
	VMIDMax int `json:"vmid_max"`
	PortMin int `json:"port_min"`
	PortMax int `json:"port_max"`
}

// registryCmd shows the registry's pools, or changes the bounds its flags
// name (a PATCH: the others are kept).
func registryCmd(e *env) *cobra.Command {
	var in registrySettings
	cmd := &cobra.Command{
		Use:   "registry [--vmid-min N] [--vmid-max N] [--port-min N] [--port-max N]",
		Short: "Show or change the registry's VMID and public port pools",
		Long: `Show the ranges the registry hands VMIDs and public ports out of, or change the
bounds the flags name and keep the others.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var r registrySettings
			patch := changed(c, map[string]any{"vmid-min": &in.VMIDMin, "vmid-max": &in.VMIDMax, "port-min": &in.PortMin, "port-max": &in.PortMax})
			method, body := "GET", any(nil)
			if len(patch) > 0 {
				method, body = "PATCH", patch
			}
			if err := e.call(method, "/api/v1/settings/registry", body, &r); err != nil {
				return err
			}
			return e.print(r, []string{"VMIDS", "PUBLIC PORTS"}, [][]string{{
				strconv.Itoa(r.VMIDMin) + "-" + strconv.Itoa(r.VMIDMax), strconv.Itoa(r.PortMin) + "-" + strconv.Itoa(r.PortMax)}})
		},
	}
	f := cmd.Flags()
	f.IntVar(&in.VMIDMin, "vmid-min", 0, "lowest VMID handed out")
	f.IntVar(&in.VMIDMax, "vmid-max", 0, "highest VMID handed out")
	f.IntVar(&in.PortMin, "port-min", 0, "lowest public port handed out (per node)")
	f.IntVar(&in.PortMax, "port-max", 0, "highest public port handed out (per node)")
	return cmd
}

// placementSettings choose the node of deploys that name none.
type placementSettings struct {
	Strategy         string  `json:"strategy"`
	MemoryOvercommit float64 `json:"memory_overcommit"`
	CPUOvercommit    float64 `json:"cpu_overcommit"`
}

// placementCmd shows how deploys are placed, or changes the settings its
// flags name (a PATCH).
func placementCmd(e *env) *cobra.Command {
	var in placementSettings
	cmd := &cobra.Command{
		Use:   "placement [--strategy spread|pack] [--memory-overcommit F] [--cpu-overcommit F]",
		Short: "Show or change how deploys without --node choose their node",
		Long: `Show the placement settings, or change the ones the flags name and keep the others.
spread puts a deploy on the ready node with the most memory free after it; pack on the one
with the least that still fits. The overcommit factors (from 1) multiply a node's memory and
CPUs; a deploy that fits no ready node is refused (409, capacity).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var p placementSettings
			patch := changed(c, map[string]any{"strategy": &in.Strategy, "memory-overcommit": &in.MemoryOvercommit, "cpu-overcommit": &in.CPUOvercommit})
			method, body := "GET", any(nil)
			if len(patch) > 0 {
				method, body = "PATCH", patch
			}
			if err := e.call(method, "/api/v1/settings/placement", body, &p); err != nil {
				return err
			}
			f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
			return e.print(p, []string{"STRATEGY", "MEMORY OVERCOMMIT", "CPU OVERCOMMIT"}, [][]string{{p.Strategy, f(p.MemoryOvercommit), f(p.CPUOvercommit)}})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Strategy, "strategy", "", "spread or pack")
	f.Float64Var(&in.MemoryOvercommit, "memory-overcommit", 0, "factor on each node's memory, 1-4 (the cluster's default is 1)")
	f.Float64Var(&in.CPUOvercommit, "cpu-overcommit", 0, "factor on each node's CPUs, 1-16 (the cluster's default is 4)")
	return cmd
}
