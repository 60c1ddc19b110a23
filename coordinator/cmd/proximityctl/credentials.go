package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

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
