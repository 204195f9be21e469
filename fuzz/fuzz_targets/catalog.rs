//! The catalog YAML importer's reading half: any text is either refused with an error or
//! read into users and groups with valid references; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else { return };
    let Ok(catalog) = herald_core::directory::Catalog::parse(yaml) else { return };
    let summary = catalog.summary();
    assert_eq!(catalog.refs().count(), summary.users + summary.groups);
    for r in catalog.refs() {
        // Every reference read back parses to itself.
        assert_eq!(r.as_str().parse::<herald_model::EntityRef>().unwrap().as_str(), r.as_str());
    }
});
