object 8724a9623cfec2cddc761f745591c021e8e06bcc
type commit
tag v0.9.0
tagger Rel Eng <releng@example.com> 1748779200 +0000

unsigned release
