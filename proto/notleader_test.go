package proto

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// "Not the leader" is told by its code and detail, never by its text.
func TestNotLeaderIsACodeNotAText(t *testing.T) {
	if !IsNotLeader(NotLeader()) {
		t.Fatal("NotLeader is not IsNotLeader")
	}
	// What crosses the wire: the status rebuilt from its proto form.
	if !IsNotLeader(status.ErrorProto(status.Convert(NotLeader()).Proto())) {
		t.Fatal("NotLeader after a round trip is not IsNotLeader")
	}
	for _, err := range []error{
		status.Error(codes.FailedPrecondition, "not the leader"),
		status.Error(codes.Unavailable, "not the leader"),
		errors.New("not the leader"),
		nil,
	} {
		if IsNotLeader(err) {
			t.Errorf("IsNotLeader(%v) = true", err)
		}
	}
}
