package track

import "testing"

// TestFail: a Fail holds for what is sent after it until the next Sync is
// sent, whatever the server has answered by then, and no longer.
func TestFail(t *testing.T) {
	tr := New[int](nil)
	if tr.Failing() {
		t.Fatal("a new tracker is failing")
	}
	tr.Send(Parse, 1)
	tr.Fail()
	tr.Send(Bind, 2)
	if !tr.Failing() {
		t.Fatal("not failing after Fail")
	}
	// The server's answers do not end it: only the sender's Sync does.
	if _, err := tr.Server('E'); err != nil {
		t.Fatal(err)
	}
	tr.Settle()
	if !tr.Failing() {
		t.Fatal("the error answered ended the failing group before its Sync")
	}
	tr.Send(Sync, 3)
	if tr.Failing() {
		t.Fatal("still failing after the Sync was sent")
	}
	tr.Send(Query, 4)
	if tr.Failing() {
		t.Fatal("a Query after the Sync is failing")
	}
}
