// Topologies
