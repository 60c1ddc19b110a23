package cluster

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/coordinator/proposer"
)

// resealOIDC seals the single sign-on client secret anew under the primary
// key when another key sealed it (after a rotation). Leader only. It runs
// before the CA key's re-seal, so sealed_by names the new key only once
// this secret is sealed with it as well.
func (c *Cluster) resealOIDC(ctx context.Context) {
	var o fsm.OIDCSettings
	var ok bool
	c.fsm.Read(func(s *fsm.State) { o, ok = s.OIDCSettings() })
	sealer := c.Sealer()
	if !ok || o.ClientSecret == nil || o.ClientSecret.KeyID == sealer.PrimaryID() {
		return
	}
	plain, err := sealer.Open(fsm.OIDCSecretPurpose, o.ClientSecret)
	if err != nil {
		c.log.Error("re-seal the OIDC client secret", "err", err)
		return
	}
	if o.ClientSecret, err = sealer.Seal(fsm.OIDCSecretPurpose, plain); err != nil {
		c.log.Error("re-seal the OIDC client secret", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.Propose(pctx, fsm.Command{Type: fsm.CmdSetOIDC, RequestID: "seal-oidc/" + o.ClientSecret.KeyID + "/" + strconv.FormatUint(c.raft.LastIndex(), 10),
		SetOIDC: &o})
	if err == nil {
		err = res.Err()
	}
	if err != nil && !errors.Is(err, proposer.ErrNotLeader) {
		c.log.Warn("re-seal the OIDC client secret", "err", err)
		return
	}
	if err == nil {
		c.log.Info("OIDC client secret sealed", "key", o.ClientSecret.KeyID)
	}
}
