package proxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// linksQuery returns the catalog query's last statement: the columns a
// policy column of the policy tables (schema and name pairs, quoted) is
// linked to, one row each: by a foreign key in either direction ('f'),
// and the generated columns computed from it ('g'). Columns: kind, the
// policy column's schema, table and name, then the other column's table
// OID, schema, table, attnum and name.
func linksQuery(pairs []string) string {
	in := "(" + strings.Join(pairs, ", ") + ")"
	return " SELECT 'f', n.nspname, c.relname, a.attname, o.oid::text, m.nspname, o.relname, oa.attnum::text, oa.attname" +
		" FROM pg_catalog.pg_constraint k" +
		" CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.confkey)) AS p(here, there)" +
		" CROSS JOIN LATERAL (VALUES (k.conrelid, p.here, k.confrelid, p.there), (k.confrelid, p.there, k.conrelid, p.here)) AS s(rel, att, orel, oatt)" +
		" JOIN pg_catalog.pg_class c ON c.oid = s.rel JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" +
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = s.att" +
		" JOIN pg_catalog.pg_class o ON o.oid = s.orel JOIN pg_catalog.pg_namespace m ON m.oid = o.relnamespace" +
		" JOIN pg_catalog.pg_attribute oa ON oa.attrelid = o.oid AND oa.attnum = s.oatt" +
		" WHERE k.contype = 'f' AND (n.nspname, c.relname) IN " + in +
		" UNION ALL SELECT 'g', n.nspname, c.relname, a.attname, c.oid::text, n.nspname, c.relname, g.attnum::text, g.attname" +
		" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" +
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped" +
		" JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid" +
		" JOIN pg_catalog.pg_attribute g ON g.attrelid = c.oid AND g.attnum = ad.adnum AND g.attgenerated <> '' AND g.attnum <> a.attnum" +
		" JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid" +
		"  AND d.refobjid = c.oid AND d.refobjsubid = a.attnum" +
		" WHERE (n.nspname, c.relname) IN " + in
}

// readLinks reads linksQuery's rows. A foreign key between a policy
// column and a column not encrypted the same way (a plain column, or a
// policy column of another mode or associated data) would let values pass
// between them unchanged, by ON UPDATE CASCADE or by the check itself:
// writes to the policy column are a hazard, and the table on the other end
// is refused like a view. A generated column computed from a policy column
// holds a function of its ciphertext: statements that name it, and rows
// that include it, are refused.
func (c *catalog) readLinks(p *Policy, rows [][][]byte) error {
	for _, row := range rows {
		if len(row) != 9 || slices.ContainsFunc(row, func(b []byte) bool { return b == nil }) {
			return fmt.Errorf("catalog query returned a malformed link row")
		}
		rc := p.analyzer.Policy().Lookup(string(row[1]), string(row[2]), string(row[3]))
		if rc == nil {
			continue
		}
		oid, err1 := strconv.ParseUint(string(row[4]), 10, 32)
		attnum, err2 := strconv.ParseInt(string(row[7]), 10, 16)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("catalog query returned a malformed link row")
		}
		schema, table, column := string(row[5]), string(row[6]), string(row[8])
		if string(row[0]) == "g" {
			if c.derived == nil {
				c.derived = map[colKey]string{}
			}
			c.derived[colKey{uint32(oid), int16(attnum)}] = p.column(rc).name
			c.derivedNames = append(c.derivedNames, rewrite.TextSpellings(column)...)
			continue
		}
		other := p.analyzer.Policy().Lookup(schema, table, column)
		if other != nil && other.Mode() == rc.Mode() && other.AssociatedData() == rc.AssociatedData() {
			continue
		}
		name := schema + "." + table + "." + column
		if _, ok := c.hazards[rc]; !ok {
			c.hazards[rc] = "a foreign key links it to " + name + ", which is not encrypted the same way, so values would pass between them unencrypted or encrypted (ON UPDATE CASCADE); drop the foreign key"
		}
		// The other end's table is refused like a view, a policy table
		// too (its plain column would cascade into the policy column):
		// the schema is wrong until the foreign key is dropped.
		v := &relation{oid: uint32(oid), schema: schema, name: table, kind: rewrite.RelTable, reach: reachForeignKey, was: p.column(rc).name}
		if len(c.views[v.name]) == 0 {
			c.viewNames = append(c.viewNames, rewrite.TextSpellings(v.name)...)
		}
		c.views[v.name] = append(c.views[v.name], v)
	}
	return nil
}
