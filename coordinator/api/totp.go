package api

import (
	"net/http"

	"github.com/proximity-ve/proximity/coordinator/auth"
	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/problem"
)

// recoveryCodes is how many one-time recovery codes a user gets.
const recoveryCodes = 10

// ErrTypeOTPRequired names the problem type of a login that needs a
// second factor (urn:proximity:problem:otp-required): the sign-in form
// shows the code field on it.
const ErrTypeOTPRequired = "otp-required"

// enrolTOTP starts two-factor enrolment for the caller: a new secret,
// sealed before it enters Raft, and its otpauth:// URI. It is off until a
// code is verified.
func (a *API) enrolTOTP(rq *request) (int, any, error) {
	secret, uri, err := auth.NewTOTP(rq.user.Name)
	if err != nil {
		return 0, nil, err
	}
	sealed, err := a.b.Sealer().Seal(fsm.TOTPKeyPurpose, []byte(secret))
	if err != nil {
		return 0, nil, err
	}
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetTOTP, RequestID: rq.key,
		SetTOTP: &fsm.SetTOTPCmd{UserID: rq.user.ID, Enrol: sealed}}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"uri": uri, "secret": secret}, nil
}

// totpSecret opens a user's TOTP secret.
func (a *API) totpSecret(u fsm.User) (string, error) {
	if u.TOTP == nil || u.TOTP.Secret == nil {
		return "", problem.E(problem.Conflict, "no two-factor enrolment")
	}
	b, err := a.b.Sealer().Open(fsm.TOTPKeyPurpose, u.TOTP.Secret)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// verifyTOTP turns two-factor authentication on once the caller proves
// it with a code, and answers the recovery codes, shown once.
func (a *API) verifyTOTP(rq *request) (int, any, error) {
	var in struct {
		Code string `json:"code"`
	}
	if err := rq.decode(&in); err != nil {
		return 0, nil, err
	}
	u, err := a.lookupUser(rq.user.ID)
	if err != nil {
		return 0, nil, err
	}
	if u.TOTP == nil || u.TOTP.Enabled {
		return 0, nil, problem.E(problem.Conflict, "no two-factor enrolment waits to be turned on (POST /api/v1/me/totp first)")
	}
	secret, err := a.totpSecret(u)
	if err != nil {
		return 0, nil, err
	}
	step, ok := auth.CheckTOTP(secret, in.Code, a.now())
	if !ok {
		return 0, nil, problem.E(problem.Invalid, "code: not the current code of the enrolled secret")
	}
	codes, hashes := auth.NewRecoveryCodes(recoveryCodes)
	if _, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetTOTP, RequestID: rq.key,
		SetTOTP: &fsm.SetTOTPCmd{UserID: u.ID, Enable: true, Recovery: hashes, UseStep: step}}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"enabled": true, "recovery_codes": codes}, nil
}

// resetTOTP removes a user's second factor (admin).
func (a *API) resetTOTP(rq *request) (int, any, error) {
	if _, err := a.proposeEverywhere(rq, fsm.Command{Type: fsm.CmdSetTOTP, RequestID: rq.key,
		SetTOTP: &fsm.SetTOTPCmd{UserID: rq.r.PathValue("id"), Reset: true}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// checkSecondFactor checks a login's otp for a user with two-factor on:
// a current code (each step once) or an unused recovery code, spent
// through Raft so two servers cannot both accept it.
func (a *API) checkSecondFactor(rq *request, u fsm.User, otp string) error {
	if otp == "" {
		return &problem.Error{Kind: problem.Unauthenticated, Type: ErrTypeOTPRequired, Detail: "this account needs a one-time code (otp)"}
	}
	cmd := fsm.SetTOTPCmd{UserID: u.ID}
	if auth.IsRecoveryCode(otp) {
		cmd.UseRecovery = auth.HashRecoveryCode(otp)
	} else {
		secret, err := a.totpSecret(u)
		if err != nil {
			return err
		}
		step, ok := auth.CheckTOTP(secret, otp, a.now())
		if !ok {
			return problem.E(problem.Unauthenticated, "the one-time code is not right")
		}
		cmd.UseStep = step
	}
	_, err := a.propose(rq, fsm.Command{Type: fsm.CmdSetTOTP, RequestID: NewID("otp_"), SetTOTP: &cmd})
	return err
}
