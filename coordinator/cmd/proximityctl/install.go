package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
	"gopkg.in/yaml.v3"
)

// installOptions are `proximityctl node install`'s settings.
type installOptions struct {
	target         string // [user@]host[:port]
	joinToken      string
	coordinator    string
	pkg            string
	node           string
	identity       string
	knownHosts     string
	connectTimeout time.Duration
	commandTimeout time.Duration
	getenv         func(string) string
	out            io.Writer
}

func nodeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Install the agent on Proxmox nodes, or remove a node"}
	o := installOptions{getenv: e.getenv, out: e.stdout}
	install := &cobra.Command{
		Use:   "install [USER@]HOST[:PORT]",
		Short: "Copy the agent package to a node over SSH, install it, configure it and start it",
		Long: "Copies the proximity-agent .deb to the node over SSH, installs it with dpkg, writes\n" +
			"/etc/proximity/agent.yaml (mode 0600) with the join token and starts the agent.\n" +
			"The node's host key must already be in the known hosts file: unknown or changed\n" +
			"keys are refused. Authentication uses --identity or the ssh-agent.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.target = args[0]
			return o.run(context.Background())
		},
	}
	f := install.Flags()
	f.StringVar(&o.joinToken, "join-token", "", "join token from `proximityctl join-tokens create` (required)")
	f.StringVar(&o.coordinator, "coordinator", "", "coordinators' gRPC addresses, comma separated (required)")
	f.StringVar(&o.pkg, "package", "", "the proximity-agent .deb to install (required)")
	f.StringVar(&o.node, "node", "", "the node's Proxmox name (default: its hostname)")
	f.StringVar(&o.identity, "identity", "", "private key file (default: the ssh-agent at $SSH_AUTH_SOCK)")
	f.StringVar(&o.knownHosts, "known-hosts", "", "known hosts file (default ~/.ssh/known_hosts)")
	f.DurationVar(&o.connectTimeout, "connect-timeout", 10*time.Second, "deadline for connecting and the SSH handshake")
	f.DurationVar(&o.commandTimeout, "command-timeout", 5*time.Minute, "deadline for each remote command")
	for _, n := range []string{"join-token", "coordinator", "package"} {
		_ = install.MarkFlagRequired(n)
	}
	cmd.AddCommand(install, nodeRemoveCmd(e))
	return cmd
}

// splitTarget parses [user@]host[:port].
func splitTarget(t string) (user, addr string) {
	user = "root"
	if u, h, ok := strings.Cut(t, "@"); ok {
		user, t = u, h
	}
	if _, _, err := net.SplitHostPort(t); err != nil {
		t = net.JoinHostPort(strings.Trim(t, "[]"), "22")
	}
	return user, t
}

func (o *installOptions) auth() ([]ssh.AuthMethod, func(), error) {
	if o.identity != "" {
		b, err := os.ReadFile(o.identity)
		if err != nil {
			return nil, nil, err
		}
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("--identity %s: %w (encrypted keys: load them into ssh-agent)", o.identity, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, func() {}, nil
	}
	sock := o.getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("no --identity and no ssh-agent (SSH_AUTH_SOCK is not set)")
	}
	conn, err := net.DialTimeout("unix", sock, o.connectTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-agent: %w", err)
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(agent.NewClient(conn).Signers)}, func() { conn.Close() }, nil
}

// dial connects with strict host key checking; the TCP connect and the
// whole SSH handshake share the connect deadline.
func (o *installOptions) dial() (*ssh.Client, error) {
	user, addr := splitTarget(o.target)
	khFile := o.knownHosts
	if khFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	check, err := knownhosts.New(khFile)
	if err != nil {
		return nil, fmt.Errorf("known hosts: %w", err)
	}
	hostKey := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) > 0 {
				return fmt.Errorf("the host key of %s has CHANGED (now %s, known in %s:%d); refusing to connect",
					hostname, ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line)
			}
			return fmt.Errorf("the host key of %s (%s %s) is not in %s; check the fingerprint on the node and add it",
				hostname, key.Type(), ssh.FingerprintSHA256(key), khFile)
		}
		return err
	}
	methods, closeAuth, err := o.auth()
	if err != nil {
		return nil, err
	}
	defer closeAuth()
	conn, err := net.DialTimeout("tcp", addr, o.connectTimeout)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(o.connectTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: user, Auth: methods, HostKeyCallback: hostKey, Timeout: o.connectTimeout,
	})
	if err != nil {
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("ssh %s: the handshake timed out after %s", addr, o.connectTimeout)
		}
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// runRemote runs one command with stdin and a deadline; at the deadline
// the connection is closed, which ends the session.
func (o *installOptions) runRemote(ctx context.Context, c *ssh.Client, cmd string, stdin []byte) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	ctx, cancel := context.WithTimeout(ctx, o.commandTimeout)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s: %v: %s", strings.Fields(cmd)[0], err, strings.TrimSpace(errb.String()))
		}
		return out.String(), nil
	case <-ctx.Done():
		c.Close()
		return "", fmt.Errorf("%s: no answer within %s", strings.Fields(cmd)[0], o.commandTimeout)
	}
}

func (o *installOptions) run(ctx context.Context) error {
	pkg, err := os.ReadFile(o.pkg)
	if err != nil {
		return fmt.Errorf("--package: %w", err)
	}
	c, err := o.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	step := func(what string) { fmt.Fprintf(o.out, "%s: %s\n", o.target, what) }
	if o.node == "" {
		name, err := o.runRemote(ctx, c, "hostname", nil)
		if err != nil {
			return err
		}
		o.node = strings.TrimSpace(name)
	}
	const remoteDeb = "/var/tmp/proximity-agent-install.deb"
	step(fmt.Sprintf("copying %s (%d bytes)", filepath.Base(o.pkg), len(pkg)))
	if _, err := o.runRemote(ctx, c, "umask 077 && cat > "+remoteDeb, pkg); err != nil {
		return err
	}
	step("installing")
	if _, err := o.runRemote(ctx, c, "DEBIAN_FRONTEND=noninteractive dpkg -i "+remoteDeb+" && rm -f "+remoteDeb, nil); err != nil {
		return err
	}
	conf, err := yaml.Marshal(map[string]string{
		"node": o.node, "coordinator": o.coordinator, "join-token": o.joinToken, "data-dir": "/var/lib/proximity-agent",
	})
	if err != nil {
		return err
	}
	// The token travels on stdin, never on a command line.
	step("writing /etc/proximity/agent.yaml for node " + o.node)
	if _, err := o.runRemote(ctx, c, "install -d -m 0755 /etc/proximity && umask 077 && cat > /etc/proximity/agent.yaml.new && mv /etc/proximity/agent.yaml.new /etc/proximity/agent.yaml", conf); err != nil {
		return err
	}
	step("starting proximity-agent")
	if _, err := o.runRemote(ctx, c, "systemctl enable proximity-agent.service && systemctl restart proximity-agent.service", nil); err != nil {
		return err
	}
	step("done; the node appears in `proximityctl nodes` once its agent has joined")
	return nil
}
