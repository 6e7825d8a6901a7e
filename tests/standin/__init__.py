"""A pod stand-in: plays the kubelet of one node on a real API server, and runs real protocol servers."""
