package rewrite

import "testing"

func TestFingerprintWithoutStrings(t *testing.T) {
	for _, pair := range [][2]string{
		{"CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f('alpha')", "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f('beta')"},
		{"DO $$BEGIN INSERT INTO clients (email) VALUES ('a@x'); END$$", "DO $$BEGIN INSERT INTO clients (email) VALUES ('b@y'); END$$"},
		{"CREATE FUNCTION g() RETURNS text LANGUAGE sql AS 'SELECT ''one'''", "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS 'SELECT ''two'''"},
		{"SELECT * FROM clients WHERE email = E'a\\'b'", "SELECT * FROM clients WHERE email = 'c'"},
		{"SELECT x'0f', b'01'", "SELECT x'ff', b'10'"},
	} {
		a, b := Fingerprint(pair[0]), Fingerprint(pair[1])
		if a == "" || a != b {
			t.Errorf("%q and %q: fingerprints %q and %q differ", pair[0], pair[1], a, b)
		}
	}
	if Fingerprint("SELECT 1") == Fingerprint("SELECT 1 FROM clients") {
		t.Error("different statements, one fingerprint")
	}
}
