"""The light path, in one place: light vectors, the subject's normals (silhouette, depth, face
mesh), light estimation, shading, re-shading and cast shadows. Pure torch; it may use
`conditioning/` (masks, filters, fills) but nothing there imports it back."""
