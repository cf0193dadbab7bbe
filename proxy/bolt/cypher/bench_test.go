package cypher

import "testing"

// BenchmarkRewrite measures parse + rewrite + print per query class.
func BenchmarkRewrite(b *testing.B) {
	classes := map[string]string{
		"lightrag-upsert-node": "MERGE (n:base {entity_id: $entity_id}) SET n += $properties SET n:`PERSON` RETURN n",
		"lightrag-upsert-edge": "MATCH (source:base {entity_id: $source_entity_id}) WITH source MATCH (target:base {entity_id: $target_entity_id}) MERGE (source)-[r:DIRECTED]-(target) SET r += $properties RETURN r, source, target",
		"lightrag-batch-nodes": "UNWIND $nodes AS node MERGE (n:base {entity_id: node.entity_id}) SET n += node.properties RETURN count(n) AS upserted",
		"lightrag-degree":      "MATCH (n:base) WHERE n.entity_id IN $ids RETURN n.entity_id AS id, COUNT { (n)--() } AS degree",
		"lightrag-neighbours":  "MATCH (n:base {entity_id: $entity_id}) OPTIONAL MATCH (n)-[r]-(connected:base) WHERE connected.entity_id IS NOT NULL RETURN n, r, connected",
		"lightrag-fulltext":    "CALL db.index.fulltext.queryNodes('entity_id_fulltext_idx', $query) YIELD node, score WITH node, score WHERE node:base RETURN node.entity_id AS id, score ORDER BY score DESC LIMIT $limit",
		"subqueries":           "MATCH (a) WHERE EXISTS { MATCH (a)-->(b) WHERE COUNT { (b)-->() } > 2 AND EXISTS { (b)<--(:X) } } RETURN a, [(a)-[:FRIEND]->(f) WHERE f.age > 30 | f.name] AS friends",
		"refused-procedure":    "CALL db.labels() YIELD label RETURN label",
	}
	r := testRewriter(b)
	for name, q := range classes {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.Rewrite(q, "acme")
			}
		})
	}
}
