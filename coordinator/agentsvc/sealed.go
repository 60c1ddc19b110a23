package agentsvc

import (
	"encoding/json"

	"github.com/proximity-ve/proximity/coordinator/fsm"
	"github.com/proximity-ve/proximity/internal/taskspec"
)

// openSpec returns the spec a task is delivered with. A write_env task's
// sealed values (secret settings a person gave) are opened into its
// values here, on the way to the agent over the mutually authenticated
// stream, so the Raft log holds them only sealed. A value that cannot be
// opened stays sealed, and the agent refuses the task; the reason is
// logged without the value.
func (s *Service) openSpec(t fsm.Task) []byte {
	if t.Kind != taskspec.WriteEnv || len(t.Spec) == 0 {
		return t.Spec
	}
	var spec taskspec.EnvSpec
	if err := json.Unmarshal(t.Spec, &spec); err != nil || len(spec.Sealed) == 0 {
		return t.Spec
	}
	if s.cfg.Sealer == nil {
		s.log.Error("cannot open sealed settings: no keyring", "task", t.ID)
		return t.Spec
	}
	kr := s.cfg.Sealer()
	if spec.Values == nil {
		spec.Values = map[string]string{}
	}
	for name, sealed := range spec.Sealed {
		b, err := kr.Open(fsm.AppSettingPurpose(spec.App, name), sealed)
		if err != nil {
			s.log.Error("cannot open a sealed setting", "task", t.ID, "name", name, "err", err)
			continue
		}
		spec.Values[name] = string(b)
		delete(spec.Sealed, name)
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return t.Spec
	}
	return out
}
