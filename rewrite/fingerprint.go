package rewrite

import pg_query "github.com/pganalyze/pg_query_go/v6"

// Fingerprint returns libpg_query's fingerprint of a statement: a hex
// string that identifies its parse tree with constants, parameters and
// names of prepared statements left out, so every run of one query of the
// application has one fingerprint, whatever its values. It is "" for text
// that does not parse.
func Fingerprint(sql string) string {
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		return ""
	}
	return fp
}
