package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// The session of `proximityctl login` is stored as JSON in
// $XDG_CONFIG_HOME/proximity/credentials (by default
// ~/.config/proximity/credentials), mode 0600 in a directory of mode 0700.
// It holds the server's address, the session token (never the password),
// when the session ends, who it is for, and the PEM of the CA the server
// was verified with.
//
// Credentials are found in this order:
//   - the address is PROXIMITY_ADDR, or the session's;
//   - the token is PROXIMITY_TOKEN, or the session's when the address is
//     the session's (a session token is never sent to another address);
//   - the server is verified with --ca-cert, PROXIMITY_CACERT, or the
//     session's CA when the address is the session's, added to the
//     system's roots (--tls-skip-verify and PROXIMITY_SKIP_VERIFY as
//     everywhere).
//
// The file is read only when PROXIMITY_ADDR or PROXIMITY_TOKEN is unset;
// a file of a mode other than 0600 is refused.

// credentialsFile is the stored session's path within the config directory.
const credentialsFile = "proximity/credentials"

// session is what `proximityctl login` stores.
type session struct {
	Addr      string    `json:"addr"` // the API's base URL, as apiBase makes it
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      user      `json:"user"`
	CAPEM     string    `json:"ca_pem,omitempty"`
}

func (s *session) expired(now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)
}

// credentialsPath is where the session is stored; "" when neither
// XDG_CONFIG_HOME (absolute) nor HOME is set.
func credentialsPath(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, credentialsFile)
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", credentialsFile)
	}
	return ""
}

// loadSession reads the stored session: nil (and no error) when there is
// none. It also returns the file's path.
func loadSession(getenv func(string) string) (*session, string, error) {
	path := credentialsPath(getenv)
	if path == "" {
		return nil, "", nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("stored session: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, path, fmt.Errorf("stored session: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, path, fmt.Errorf("stored session %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		return nil, path, fmt.Errorf("stored session %s: mode %#o refused, it must be 0600 as it holds a session token (others may have read it: run proximityctl logout, or remove it, and log in again)", path, perm)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, path, fmt.Errorf("stored session: %w", err)
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil || s.Addr == "" || s.Token == "" {
		return nil, path, fmt.Errorf("stored session %s: not a session of proximityctl login; remove it and log in again", path)
	}
	return &s, path, nil
}

// saveSession writes the session atomically: a temporary file of mode
// 0600 in the same directory (made 0700 if it is new), renamed over the
// old one.
func saveSession(path string, s *session) error {
	if path == "" {
		return errors.New("nowhere to store the session: set HOME or XDG_CONFIG_HOME")
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store the session: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("store the session: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("store the session: %w", err)
	}
	if _, err := f.Write(append(raw, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("store the session: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store the session: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store the session: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store the session: %w", err)
	}
	return nil
}

// withSession completes the address and token from the environment with
// the stored session, as the comment at the top of this file says. It
// returns the session's CA (PEM) when the address is the session's.
func withSession(getenv func(string) string, addr, token string) (string, string, []byte, error) {
	if addr != "" && token != "" {
		return addr, token, nil, nil
	}
	s, path, err := loadSession(getenv)
	if err != nil || s == nil {
		return addr, token, nil, err
	}
	if addr == "" {
		addr = s.Addr
	}
	if base, err := apiBase(addr); err != nil || base != s.Addr {
		if token == "" && err == nil {
			return "", "", nil, fmt.Errorf("%s is not set, and the session stored in %s is for %s, not %s: set %s, unset %s, or run proximityctl login for %s",
				envToken, path, s.Addr, base, envToken, envAddr, base)
		}
		return addr, token, nil, nil
	}
	if token == "" {
		if s.expired(time.Now()) {
			return "", "", nil, fmt.Errorf("the session of %s stored in %s ended at %s: run proximityctl login again",
				s.User.Name, path, s.ExpiresAt.Local().Format(time.RFC3339))
		}
		token = s.Token
	}
	return addr, token, []byte(s.CAPEM), nil
}

// addSessionCA adds the stored session's CA to cfg's roots when neither
// --ca-cert nor PROXIMITY_CACERT gave one and verification is on.
func addSessionCA(cfg *tls.Config, pemBytes []byte) error {
	if len(pemBytes) == 0 || cfg.InsecureSkipVerify || cfg.RootCAs != nil {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return errors.New("stored session: its ca_pem holds no PEM certificate; log in again")
	}
	cfg.RootCAs = pool
	return nil
}

// input reads what a command asks for: from a terminal with a prompt, and
// passwords without echo; from anything else (a pipe, a file), one line
// per answer and no prompt, so that scripts can give them.
type input struct {
	r      *bufio.Reader
	fd     int
	tty    bool
	prompt io.Writer
}

func (e *env) input() *input {
	var r io.Reader = os.Stdin
	if e.stdin != nil {
		r = e.stdin
	}
	in := &input{r: bufio.NewReader(r), prompt: e.stderr}
	if f, ok := r.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		in.tty, in.fd = true, int(f.Fd())
	}
	return in
}

// line reads one line, without its end.
func (in *input) line(what string) (string, error) {
	if in.tty {
		fmt.Fprintf(in.prompt, "%s: ", what)
	}
	s, err := in.r.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		if err == io.EOF {
			return "", fmt.Errorf("standard input ended before the %s", strings.ToLower(what))
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// secret reads a password: without echo from a terminal.
func (in *input) secret(what string) (string, error) {
	if !in.tty {
		return in.line(what)
	}
	fmt.Fprintf(in.prompt, "%s: ", what)
	b, err := term.ReadPassword(in.fd)
	fmt.Fprintln(in.prompt)
	if err != nil {
		return "", fmt.Errorf("read the %s: %w", strings.ToLower(what), err)
	}
	return string(b), nil
}

// newPassword asks for a new password twice.
func (in *input) newPassword() (string, error) {
	pw, err := in.secret("New password")
	if err != nil {
		return "", err
	}
	again, err := in.secret("New password again")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two new passwords differ; nothing changed")
	}
	if pw == "" {
		return "", errors.New("the new password is empty; nothing changed")
	}
	return pw, nil
}

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
		Use:   "login [--name NAME]",
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
