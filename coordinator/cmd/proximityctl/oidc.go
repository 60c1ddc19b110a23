package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// oidcSettings is the wire shape of the single sign-on settings as the
// API shows them: the client secret is never shown, only whether one is
// set.
type oidcSettings struct {
	Issuer          string   `json:"issuer"`
	ClientID        string   `json:"client_id"`
	ClientSecretSet bool     `json:"client_secret_set"`
	RedirectURL     string   `json:"redirect_url"`
	Scopes          []string `json:"scopes"`
	UsernameClaim   string   `json:"username_claim"`
	RoleClaim       string   `json:"role_claim"`
	AdminValues     []string `json:"admin_values"`
}

// oidcCmd shows single sign-on, changes the settings its flags name
// (keeping the others), or turns it off. The client secret is read from a
// file or standard input, never from the command line.
func oidcCmd(e *env) *cobra.Command {
	var in oidcSettings
	var secretFile string
	var off bool
	cmd := &cobra.Command{
		Use:   "oidc [--issuer URL --client-id ID --client-secret-file FILE|- --redirect-url URL ...] [--off]",
		Short: "Show or change single sign-on (OpenID Connect)",
		Long: `Show the single sign-on settings (the client secret is never shown), change the ones
the flags name and keep the others, or turn single sign-on off with --off.
The client secret is read from --client-secret-file (- for standard input), so it
never appears in a process list or a shell history. It is kept for the same issuer
and client ID when not given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cur oidcSettings
			if err := e.call("GET", "/api/v1/settings/oidc", nil, &cur); err != nil {
				return err
			}
			f := cmd.Flags()
			if off {
				if f.NFlag() > 1 {
					return errors.New("--off takes no other setting")
				}
				if err := e.call("PUT", "/api/v1/settings/oidc", map[string]string{"issuer": ""}, &cur); err != nil {
					return err
				}
			} else if f.NFlag() > 0 {
				// A merge patch of the flags given: the others are kept.
				body := map[string]any{}
				for flag, key := range map[string]string{"issuer": "issuer", "client-id": "client_id", "redirect-url": "redirect_url",
					"username-claim": "username_claim", "role-claim": "role_claim"} {
					if f.Changed(flag) {
						v, _ := f.GetString(flag)
						body[key] = v
					}
				}
				if f.Changed("scopes") {
					body["scopes"] = in.Scopes
				}
				if f.Changed("admin-values") {
					body["admin_values"] = in.AdminValues
				}
				if secretFile != "" {
					secret, err := readSecret(e, secretFile)
					if err != nil {
						return err
					}
					body["client_secret"] = secret
				}
				if err := e.call("PATCH", "/api/v1/settings/oidc", body, &cur); err != nil {
					return err
				}
			}
			if cur.Issuer == "" {
				return e.print(cur, []string{"SINGLE SIGN-ON"}, [][]string{{"off"}})
			}
			return e.print(cur, []string{"ISSUER", "CLIENT ID", "SECRET", "REDIRECT URL", "SCOPES", "USERNAME CLAIM", "ROLE CLAIM", "ADMIN VALUES"},
				[][]string{{cur.Issuer, cur.ClientID, map[bool]string{true: "set", false: "-"}[cur.ClientSecretSet], cur.RedirectURL,
					strings.Join(cur.Scopes, ","), dash(cur.UsernameClaim), dash(cur.RoleClaim), dash(strings.Join(cur.AdminValues, ","))}})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Issuer, "issuer", "", "the provider's issuer URL (https)")
	f.StringVar(&in.ClientID, "client-id", "", "this cluster's client ID at the provider")
	f.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret (- for standard input)")
	f.StringVar(&in.RedirectURL, "redirect-url", "", "https://<the API>/api/v1/auth/oidc/callback, as registered at the provider")
	f.StringSliceVar(&in.Scopes, "scopes", nil, "scopes to ask for (comma-separated; must include openid)")
	f.StringVar(&in.UsernameClaim, "username-claim", "", "the ID token claim that names the user")
	f.StringVar(&in.RoleClaim, "role-claim", "", "the ID token claim whose values make an admin")
	f.StringSliceVar(&in.AdminValues, "admin-values", nil, "values of the role claim that make an admin (comma-separated)")
	f.BoolVar(&off, "off", false, "turn single sign-on off")
	return cmd
}

// readSecret reads a secret from a file, or from standard input for "-":
// its first line, without the line end.
func readSecret(e *env, name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		r := e.stdin
		if r == nil {
			r = os.Stdin
		}
		b, err = io.ReadAll(io.LimitReader(r, 4096))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("--client-secret-file: %w", err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimRight(s, "\r")
	if s == "" {
		return "", errors.New("--client-secret-file: empty")
	}
	return s, nil
}
