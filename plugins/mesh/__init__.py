"""museforge's 3D props: procedural shape families (signed distance fields) for a shape VAE."""
