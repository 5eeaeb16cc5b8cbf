// Package sbom describes what an admitted module version is made of, and
// signs what modgate says about it.
//
//   - Licenses: the module's own licenses, detected offline from the root
//     license files of its zip.
//
//   - Generator: an SPDX 2.3 JSON document per module version, made with syft
//     (as a library) from the exact files of the module zip, offline and
//     byte-for-byte reproducible.
//
//   - Signer: cosign key-based signatures over blobs (the SBOM) and a signed
//     in-toto statement with the SLSA verification summary predicate, all
//     verifiable offline by the real cosign CLI:
//
//     cosign verify-blob --key cosign.pub --signature m.spdx.json.sig --insecure-ignore-tlog m.spdx.json
//     cosign verify-blob --key cosign.pub --bundle m.spdx.json.bundle --trusted-root trusted_root.json --insecure-ignore-tlog m.spdx.json
//     cosign verify-blob-attestation --key cosign.pub --signature m.intoto.jsonl --type https://slsa.dev/verification_summary/v1 --insecure-ignore-tlog m.zip
//
//     where trusted_root.json holds [OfflineTrustedRoot]. Without
//     SIGSTORE_REKOR_PUBLIC_KEY set (cosign.pub will do: with
//     --insecure-ignore-tlog nothing is verified with it) the CLI first tries
//     to fetch the public good instance's trusted root over TUF, and offline
//     warns that it could not before verifying.
package sbom
