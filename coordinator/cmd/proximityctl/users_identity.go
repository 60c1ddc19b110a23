package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// userQuota is a user's own quota; 0 is unlimited.
type userQuota struct {
	MaxApps     int `json:"max_apps"`
	MaxCores    int `json:"max_cores"`
	MaxMemoryMB int `json:"max_memory_mb"`
	MaxDiskGB   int `json:"max_disk_gb"`
}

// userDetail is GET /api/v1/users/{id}.
type userDetail struct {
	user
	Disabled    bool       `json:"disabled"`
	Quota       *userQuota `json:"quota"`
	HasPassword bool       `json:"has_password"`
}

// tokenInfo is a token or session as the API lists it.
type tokenInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Current    bool       `json:"current"`
}

// meInfo is GET /api/v1/me.
type meInfo struct {
	userDetail
	Token tokenInfo `json:"token"`
	Usage struct {
		Apps     int `json:"apps"`
		Cores    int `json:"cores"`
		MemoryMB int `json:"memory_mb"`
		DiskGB   int `json:"disk_gb"`
	} `json:"usage"`
}

func (e *env) me() (meInfo, error) {
	var m meInfo
	err := e.call("GET", "/api/v1/me", nil, &m)
	return m, err
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func quotaText(q *userQuota) string {
	if q == nil {
		return "default"
	}
	n := func(v int, unit string) string {
		if v == 0 {
			return "unlimited"
		}
		return strconv.Itoa(v) + unit
	}
	return fmt.Sprintf("apps %s, cores %s, memory %s, disk %s", n(q.MaxApps, ""), n(q.MaxCores, ""), n(q.MaxMemoryMB, " MB"), n(q.MaxDiskGB, " GB"))
}

func meCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "me",
		Short: "Show who the credentials are: the user, its quota and usage, and the token or session",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			m, err := e.me()
			if err != nil {
				return err
			}
			usage := fmt.Sprintf("%d apps, %d cores, %d MB memory, %d GB disk", m.Usage.Apps, m.Usage.Cores, m.Usage.MemoryMB, m.Usage.DiskGB)
			return e.print(m, []string{"NAME", "ROLE", "DISABLED", "QUOTA", "USAGE", "CREDENTIAL", "EXPIRES"},
				[][]string{{m.Name, m.Role, strconv.FormatBool(m.Disabled), quotaText(m.Quota), usage, m.Token.Kind + " " + m.Token.ID, when(m.Token.ExpiresAt)}})
		},
	}
}

// userID resolves a user named by name or by id ("usr_..."): the caller
// itself is found through GET /api/v1/me, anyone else through the list of
// users (which takes an admin). "" is the caller.
func (e *env) userID(arg string) (string, error) {
	m, err := e.me()
	if err != nil {
		return "", err
	}
	if arg == "" || arg == m.ID || strings.EqualFold(arg, m.Name) {
		return m.ID, nil
	}
	if strings.HasPrefix(arg, "usr_") {
		return arg, nil
	}
	for page := 1; ; page++ {
		var out struct {
			Items []user `json:"items"`
			Total int    `json:"total"`
		}
		if err := e.call("GET", "/api/v1/users?per_page=100&page="+strconv.Itoa(page), nil, &out); err != nil {
			return "", err
		}
		for _, u := range out.Items {
			if strings.EqualFold(u.Name, arg) {
				return u.ID, nil
			}
		}
		if len(out.Items) == 0 || page*100 >= out.Total {
			return "", &apiError{Status: http.StatusNotFound, Title: http.StatusText(http.StatusNotFound), Detail: fmt.Sprintf("no user is named %q", arg)}
		}
	}
}

func userPath(id string) string { return "/api/v1/users/" + url.PathEscape(id) }

var userDetailHeader = []string{"ID", "NAME", "ROLE", "DISABLED", "QUOTA", "PASSWORD"}

func userDetailRows(u userDetail) [][]string {
	pw := "no"
	if u.HasPassword {
		pw = "set"
	}
	return [][]string{{u.ID, u.Name, u.Role, strconv.FormatBool(u.Disabled), quotaText(u.Quota), pw}}
}

// userIdentityCmds are the subcommands of `users` about passwords,
// disabling, deleting and tokens.
func userIdentityCmds(e *env) []*cobra.Command {
	passwd := &cobra.Command{
		Use:   "passwd [USER]",
		Short: "Set a password: your own (asks the current one), or, as an admin, another user's",
		Long: `Set a user's password (12 to 512 characters). Without USER, or with your own name, it is
your own: the current password is asked for when you have one. An admin sets anyone's.
The new password is asked for twice. From a terminal the passwords are read without echo;
otherwise one line each from standard input (the current one first, when asked for).
Setting a password ends the user's other sessions. USER is a name or an id (usr_...).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			m, err := e.me()
			if err != nil {
				return err
			}
			id := m.ID
			if len(args) == 1 {
				if id, err = e.userID(args[0]); err != nil {
					return err
				}
			}
			in := e.input()
			body := map[string]string{}
			if id == m.ID && m.HasPassword {
				if body["current_password"], err = in.secret("Current password"); err != nil {
					return err
				}
			}
			if body["password"], err = in.newPassword(); err != nil {
				return err
			}
			if err := e.call("PUT", userPath(id)+"/password", body, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "password set for %s\n", userArg(args, m.Name))
			return nil
		},
	}
	setDisabled := func(use, short string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " USER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				id, err := e.userID(args[0])
				if err != nil {
					return err
				}
				var u userDetail
				if err := e.call("PATCH", userPath(id), map[string]bool{"disabled": disabled}, &u); err != nil {
					return err
				}
				return e.print(u, userDetailHeader, userDetailRows(u))
			},
		}
	}
	disable := setDisabled("disable", "Disable a user (admin): its tokens and sessions are refused until it is enabled", true)
	enable := setDisabled("enable", "Enable a disabled user (admin)", false)
	del := &cobra.Command{
		Use: "delete USER", Short: "Delete a user and its tokens (admin); refused while it owns apps", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := e.userID(args[0])
			if err != nil {
				return err
			}
			if err := e.call("DELETE", userPath(id), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "deleted %s\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{passwd, disable, enable, del, tokensCmd(e)}
}

func userArg(args []string, me string) string {
	if len(args) == 1 {
		return args[0]
	}
	return me
}

var tokenHeader = []string{"ID", "NAME", "KIND", "CREATED", "EXPIRES", "LAST USED", "CURRENT"}

func tokenRows(ts []tokenInfo) [][]string {
	var rows [][]string
	for _, t := range ts {
		cur := ""
		if t.Current {
			cur = "*"
		}
		rows = append(rows, []string{t.ID, dash(t.Name), t.Kind, t.CreatedAt.Format(time.RFC3339), when(t.ExpiresAt), when(t.LastUsedAt), cur})
	}
	return rows
}

func tokensCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "List, create and revoke a user's API tokens and sessions (yours by default)"}
	list := &cobra.Command{
		Use: "list [USER]", Short: "List a user's tokens and sessions (yours by default); * marks the one in use", Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := e.userID(userArg(args, ""))
			if err != nil {
				return err
			}
			var out struct {
				Items []tokenInfo `json:"items"`
				Total int         `json:"total"`
			}
			if err := e.call("GET", userPath(id)+"/tokens", nil, &out); err != nil {
				return err
			}
			return e.print(out, tokenHeader, tokenRows(out.Items))
		},
	}
	var who string
	revoke := &cobra.Command{
		Use: "revoke [--user USER] TOKEN_ID", Short: "Revoke a token or end a session (yours by default)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := e.userID(who)
			if err != nil {
				return err
			}
			if err := e.call("DELETE", userPath(id)+"/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "revoked %s\n", args[0])
			return nil
		},
	}
	revoke.Flags().StringVar(&who, "user", "", "the token's user, a name or an id (default: you)")
	var name, ttl string
	create := &cobra.Command{
		Use: "create [USER] [--name NAME] [--ttl 720h]", Short: "Create an API token (yours by default); the secret is shown once", Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := e.userID(userArg(args, ""))
			if err != nil {
				return err
			}
			in := map[string]string{}
			if name != "" {
				in["name"] = name
			}
			if ttl != "" {
				in["ttl"] = ttl
			}
			var t struct {
				ID        string     `json:"id"`
				Token     string     `json:"token"`
				Name      string     `json:"name"`
				ExpiresAt *time.Time `json:"expires_at,omitempty"`
			}
			if err := e.call("POST", userPath(id)+"/tokens", in, &t); err != nil {
				return err
			}
			return e.print(t, []string{"ID", "NAME", "EXPIRES", "TOKEN"}, [][]string{{t.ID, dash(t.Name), when(t.ExpiresAt), t.Token}})
		},
	}
	create.Flags().StringVar(&name, "name", "", "a label for the token")
	create.Flags().StringVar(&ttl, "ttl", "", "how long the token lasts, such as 720h (default: until revoked)")
	cmd.AddCommand(list, create, revoke)
	return cmd
}
