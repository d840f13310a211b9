"""Front ends: model formats -> ir.Graph."""
