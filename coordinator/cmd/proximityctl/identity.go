package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// identityCmds are the top-level commands about who is calling: login,
// logout and me.
func identityCmds(e *env) []*cobra.Command {
	return []*cobra.Command{loginCmd(e), logoutCmd(e), meCmd(e)}
}

// otpRequired is the problem type of a login that needs a one-time code.
const otpRequired = "urn:proximity:problem:otp-required"

func loginCmd(e *env) *cobra.Command {
	var name, otp string
	cmd := &cobra.Command{
		Use:   "login [--name NAME] [--otp CODE]",
		Short: "Log in with a name and password and store the session for the next commands",
		Long: `Log in to the server at PROXIMITY_ADDR (or the stored session's) with a user's name and
password, and store the session in $XDG_CONFIG_HOME/proximity/credentials (by default
~/.config/proximity/credentials, mode 0600) with the server's address and the CA it was
verified with. Later commands use that session when PROXIMITY_TOKEN is not set, its
address when PROXIMITY_ADDR is not set, and its CA when neither --ca-cert nor
PROXIMITY_CACERT is given. The password is never stored.

From a terminal, login asks for the name (unless --name) and the password without echo.
When standard input is not a terminal, it reads the name (unless --name) and then the
password, one line each:

  printf '%s\n' "$PASSWORD" | proximityctl login --name alice

A user with two-factor authentication gives the one-time code (or a recovery code)
with --otp, or is asked for it (a third line when standard input is not a terminal).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return e.login(name, otp)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the user's name (asked for when not given)")
	cmd.Flags().StringVar(&otp, "otp", "", "the one-time code of a user with two-factor authentication (asked for when needed)")
	return cmd
}

func (e *env) login(name, otp string) error {
	old, path, err := loadSession(e.getenv)
	addr := e.getenv(envAddr)
	if err != nil && addr == "" {
		return err
	}
	if err != nil { // replaced below by a good one
		old = nil
	}
	if addr == "" && old != nil {
		addr = old.Addr
	}
	base, err := apiBase(addr)
	if err != nil {
		return err
	}
	if path == "" {
		return errors.New("nowhere to store the session: set HOME or XDG_CONFIG_HOME")
	}
	cfg, err := tlsConfig(e.getenv, e.conn, e.stderr)
	if err != nil {
		return err
	}
	// The CA to store: the one given, else the one stored for this server.
	var caPEM []byte
	switch {
	case cfg.InsecureSkipVerify:
	case cfg.RootCAs != nil:
		file := e.conn.caCert
		if file == "" {
			file = e.getenv(envCACert)
		}
		if caPEM, err = os.ReadFile(file); err != nil {
			return err
		}
	case old != nil && old.Addr == base:
		caPEM = []byte(old.CAPEM)
		if err := addSessionCA(cfg, caPEM); err != nil {
			return err
		}
	}
	in := e.input()
	if name == "" {
		if name, err = in.line("Name"); err != nil {
			return err
		}
		name = strings.TrimSpace(name)
	}
	if name == "" {
		return errors.New("no name given")
	}
	pw, err := in.secret("Password")
	if err != nil {
		return err
	}
	if pw == "" {
		return errors.New("no password given")
	}
	c := &client{base: base, http: newHTTPClient(cfg, e.timeout)}
	e.c = c // closed by e.close; it has no token
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		User      user      `json:"user"`
	}
	body := map[string]string{"name": name, "password": pw}
	if otp != "" {
		body["otp"] = otp
	}
	err = c.do(ctx, "POST", "/api/v1/login", body, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Type == otpRequired && otp == "" {
		if otp, err = in.line("One-time code"); err != nil {
			return err
		}
		body["otp"] = strings.TrimSpace(otp)
		err = c.do(ctx, "POST", "/api/v1/login", body, &out)
	}
	if err != nil {
		return err
	}
	if out.Token == "" {
		return errors.New("the server answered the login without a session token")
	}
	s := &session{Addr: base, Token: out.Token, ExpiresAt: out.ExpiresAt, User: out.User, CAPEM: string(caPEM)}
	if err := saveSession(path, s); err != nil {
		return err
	}
	// The session this one replaces on the same server is ended, best
	// effort.
	if old != nil && old.Addr == base && old.Token != s.Token && !old.expired(time.Now()) {
		prev := &client{base: base, token: old.Token, http: c.http}
		_ = prev.do(ctx, "POST", "/api/v1/logout", nil, nil)
	}
	fmt.Fprintf(e.stderr, "logged in to %s as %s until %s; session stored in %s\n", base, out.User.Name, out.ExpiresAt.Local().Format(time.RFC3339), path)
	if e.getenv(envToken) != "" {
		fmt.Fprintf(e.stderr, "note: %s is set and wins over this session; unset it to use the session\n", envToken)
	}
	shown := struct {
		Addr        string    `json:"addr"`
		User        user      `json:"user"`
		ExpiresAt   time.Time `json:"expires_at"`
		Credentials string    `json:"credentials"`
	}{base, out.User, out.ExpiresAt, path}
	return e.print(shown, []string{"USER", "ROLE", "SERVER", "EXPIRES"},
		[][]string{{out.User.Name, out.User.Role, base, out.ExpiresAt.Format(time.RFC3339)}})
}

func logoutCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the stored session on the server and remove it",
		Long: `End the session stored by proximityctl login on its server and remove the credentials
file. The file is removed also when the server no longer knows the session (401) or the
session has ended; if the server cannot be reached, the file is kept so that logout can
be tried again. PROXIMITY_TOKEN is not used: an API token is revoked with
proximityctl users tokens revoke.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, path, err := loadSession(e.getenv)
			if err != nil {
				return err
			}
			if s == nil {
				if path == "" {
					return errors.New("no stored session: neither HOME nor XDG_CONFIG_HOME is set")
				}
				return fmt.Errorf("not logged in: no session in %s", path)
			}
			if s.expired(time.Now()) {
				if err := os.Remove(path); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "the session had ended already; removed %s\n", path)
				return nil
			}
			cfg, err := tlsConfig(e.getenv, e.conn, e.stderr)
			if err != nil {
				return err
			}
			if err := addSessionCA(cfg, []byte(s.CAPEM)); err != nil {
				return err
			}
			c := &client{base: s.Addr, token: s.Token, http: newHTTPClient(cfg, e.timeout)}
			e.c = c
			ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
			defer cancel()
			err = c.do(ctx, "POST", "/api/v1/logout", nil, nil)
			var ae *apiError
			if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusUnauthorized) {
				fmt.Fprintf(e.stderr, "proximityctl: the session is kept in %s\n", path)
				return err
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "logged %s out of %s; removed %s\n", s.User.Name, s.Addr, path)
			return nil
		},
	}
}
