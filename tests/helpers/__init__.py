"""Helpers shared by the tests, one module per topic: workflow (the real Snakefile, a finished report, the
results layout), nets (tiny nets and data, explicit Hessians), configs (config sections with the schema's
defaults), runs (run files with known values, written with the project's own writers), claims (summary tables
with planted effects, a claims.json), datasets (local copies of MNIST/CIFAR in torchvision's formats)."""
