package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// retention is the wire shape of Proxmox's prune rules; 0 is unset.
type retention struct {
	KeepLast    int `json:"keep_last"`
	KeepHourly  int `json:"keep_hourly"`
	KeepDaily   int `json:"keep_daily"`
	KeepWeekly  int `json:"keep_weekly"`
	KeepMonthly int `json:"keep_monthly"`
	KeepYearly  int `json:"keep_yearly"`
}

func (r retention) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		n    int
	}{{"last", r.KeepLast}, {"hourly", r.KeepHourly}, {"daily", r.KeepDaily}, {"weekly", r.KeepWeekly}, {"monthly", r.KeepMonthly}, {"yearly", r.KeepYearly}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("keep-%s=%d", p.name, p.n))
		}
	}
	if len(parts) == 0 {
		return "keep all"
	}
	return strings.Join(parts, ",")
}

// policyFields are the fields of a backup policy.
type policyFields struct {
	Schedule  string    `json:"schedule"`
	Storage   string    `json:"storage"`
	Mode      string    `json:"mode"`
	Retention retention `json:"retention"`
}

// backupPolicy is an app's backup policy as the API answers it.
type backupPolicy struct {
	policyFields
	Source  string  `json:"source"`
	NextRun *string `json:"next_run"`
	LastRun *string `json:"last_run"`
}

// backupSettings is the default policy as the API answers it.
type backupSettings struct {
	policyFields
	Timezone string `json:"timezone"`
}

// policyFlags are the flags that set a policy's fields.
type policyFlags struct {
	schedule, storage, mode string
	keep                    retention
}

func (f *policyFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.schedule, "schedule", "", `a Proxmox calendar event ("daily", "sat 02:00", "mon..fri 21:00", "*/15"); "" for no scheduled runs`)
	c.Flags().StringVar(&f.storage, "storage", "", `a storage with content backup (PBS too); "" for the resource settings' backup storage`)
	c.Flags().StringVar(&f.mode, "mode", "", "vzdump's mode: snapshot, suspend or stop")
	c.Flags().IntVar(&f.keep.KeepLast, "keep-last", 0, "keep the last N backups (0: unset)")
	c.Flags().IntVar(&f.keep.KeepHourly, "keep-hourly", 0, "keep the latest backup of each of the last N hours")
	c.Flags().IntVar(&f.keep.KeepDaily, "keep-daily", 0, "keep the latest backup of each of the last N days")
	c.Flags().IntVar(&f.keep.KeepWeekly, "keep-weekly", 0, "keep the latest backup of each of the last N ISO weeks")
	c.Flags().IntVar(&f.keep.KeepMonthly, "keep-monthly", 0, "keep the latest backup of each of the last N months")
	c.Flags().IntVar(&f.keep.KeepYearly, "keep-yearly", 0, "keep the latest backup of each of the last N years")
}

// apply sets the fields whose flags were given on p; it reports whether
// any was.
func (f *policyFlags) apply(c *cobra.Command, p *policyFields) bool {
	set := false
	str := map[string]*string{"schedule": &p.Schedule, "storage": &p.Storage, "mode": &p.Mode}
	val := map[string]string{"schedule": f.schedule, "storage": f.storage, "mode": f.mode}
	for name, dst := range str {
		if c.Flags().Changed(name) {
			*dst, set = val[name], true
		}
	}
	ints := map[string][2]*int{
		"keep-last": {&p.Retention.KeepLast, &f.keep.KeepLast}, "keep-hourly": {&p.Retention.KeepHourly, &f.keep.KeepHourly},
		"keep-daily": {&p.Retention.KeepDaily, &f.keep.KeepDaily}, "keep-weekly": {&p.Retention.KeepWeekly, &f.keep.KeepWeekly},
		"keep-monthly": {&p.Retention.KeepMonthly, &f.keep.KeepMonthly}, "keep-yearly": {&p.Retention.KeepYearly, &f.keep.KeepYearly},
	}
	for name, d := range ints {
		if c.Flags().Changed(name) {
			*d[0], set = *d[1], true
		}
	}
	return set
}

func orNone(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

// backupPolicyCmd shows an app's backup policy, or changes the fields its
// flags name (the others keep the values in force).
func backupPolicyCmd(e *env) *cobra.Command {
	var f policyFlags
	var useDefault bool
	cmd := &cobra.Command{
		Use:   "policy APP [--schedule S] [--storage ID] [--mode M] [--keep-last N] [--keep-daily N] ... [--default]",
		Short: "Show or change an app's backup schedule and retention",
		Long: `Show the backup policy in force for an app: its own, or the default of
"proximityctl settings backups", with the next scheduled run. With flags, the
app gets its own policy: the fields the flags name change, the others keep the
values in force. --default removes the app's own policy. The retention follows
Proxmox's prune rules and covers all of the app's backups, manual and scheduled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := "/api/v1/apps/" + url.PathEscape(args[0]) + "/backup-policy"
			var p backupPolicy
			switch {
			case useDefault:
				if err := e.call("DELETE", path, nil, &p); err != nil {
					return err
				}
			default:
				if err := e.call("GET", path, nil, &p); err != nil {
					return err
				}
				if f.apply(c, &p.policyFields) {
					in := map[string]any{"schedule": p.Schedule, "storage": p.Storage, "mode": p.Mode, "retention": p.Retention}
					p = backupPolicy{}
					if err := e.call("PUT", path, in, &p); err != nil {
						return err
					}
				}
			}
			return e.print(p, []string{"SCHEDULE", "STORAGE", "MODE", "RETENTION", "SOURCE", "NEXT RUN", "LAST RUN"},
				[][]string{{dash(p.Schedule), dash(p.Storage), p.Mode, p.Retention.String(), p.Source, orNone(p.NextRun), orNone(p.LastRun)}})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&useDefault, "default", false, "remove the app's own policy: the default applies")
	return cmd
}

// backupSettingsCmd shows the default backup policy, or changes the
// fields its flags name with a PATCH.
func backupSettingsCmd(e *env) *cobra.Command {
	var f policyFlags
	var tz string
	cmd := &cobra.Command{
		Use:   "backups [--schedule S] [--storage ID] [--mode M] [--keep-last N] ... [--timezone TZ]",
		Short: "Show or change the default backup policy (admin)",
		Long: `Show the default backup policy of apps without their own, and the time zone
every schedule and retention period is read in. With flags, change the fields
they name and keep the others.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var cur backupSettings
			if err := e.call("GET", "/api/v1/settings/backups", nil, &cur); err != nil {
				return err
			}
			next := cur
			set := f.apply(c, &next.policyFields)
			patch := map[string]any{}
			if set {
				for k, v := range map[string]any{"schedule": next.Schedule, "storage": next.Storage, "mode": next.Mode} {
					if c.Flags().Changed(k) {
						patch[k] = v
					}
				}
				if next.Retention != cur.Retention {
					patch["retention"] = next.Retention // replaced whole
				}
			}
			if c.Flags().Changed("timezone") {
				patch["timezone"] = tz
			}
			if len(patch) > 0 {
				cur = backupSettings{}
				if err := e.call("PATCH", "/api/v1/settings/backups", patch, &cur); err != nil {
					return err
				}
			}
			return e.print(cur, []string{"SCHEDULE", "STORAGE", "MODE", "RETENTION", "TIMEZONE"},
				[][]string{{dash(cur.Schedule), dash(cur.Storage), cur.Mode, cur.Retention.String(), cur.Timezone}})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&tz, "timezone", "", "the IANA time zone of schedules and retention periods (UTC, Europe/Berlin)")
	return cmd
}
