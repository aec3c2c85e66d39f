"""Scored pairs -> duplicate groups with ids stable from night to night (`scorer group`).

`inputs` reads and validates the Parquet files, `edges` turns id pairs into an undirected scored graph,
`cluster` groups it (connected components, then `linkage`'s average linkage and single-record moves inside
components that are not complete), `summary` describes the groups, `carry` carries group ids forward from a previous run, `evaluate` compares
groups with a truth file.
"""
