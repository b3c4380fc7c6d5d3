//! The `[stores]` section: schema files in JSON and TOML, ordered supertypes first.

use super::super::{StoresSettings, StoresSettingsError};

#[test]
fn schema_files_load_in_json_and_toml_with_supertypes_first() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("schema.json");
    std::fs::write(
        &json,
        r#"[
          {"iri": "ex:Employee", "label": "Employee", "supertypes": ["ex:Person"], "required": [],
           "properties": {}},
          {"iri": "ex:Person", "label": "Person", "supertypes": [], "required": ["name"],
           "properties": {"name": {"datatype": "Text", "pattern": null, "min": null, "max": null}}}
        ]"#,
    )
    .unwrap();
    let s = StoresSettings {
        schema_file: Some(json),
        ..StoresSettings::default()
    };
    let setup = s.resolve().unwrap();
    let iris: Vec<&str> = setup.types.iter().map(|t| t.iri.as_str()).collect();
    assert_eq!(iris, ["ex:Person", "ex:Employee"]);

    let toml = dir.path().join("schema.toml");
    std::fs::write(
        &toml,
        r#"
        [[types]]
        iri = "ex:Person"
        label = "Person"
        supertypes = []
        required = ["name"]
        [types.properties.name]
        datatype = "Text"
        "#,
    )
    .unwrap();
    let s = StoresSettings {
        schema_file: Some(toml),
        ..StoresSettings::default()
    };
    assert_eq!(s.resolve().unwrap().types.len(), 1);

    let cyclic = dir.path().join("cyclic.json");
    std::fs::write(
        &cyclic,
        r#"{"types": [{"iri": "ex:A", "label": "A", "supertypes": ["ex:B"], "required": [],
             "properties": {}}]}"#,
    )
    .unwrap();
    let s = StoresSettings {
        schema_file: Some(cyclic),
        ..StoresSettings::default()
    };
    assert!(matches!(s.resolve(), Err(StoresSettingsError::Invalid(_))));
    let missing = StoresSettings {
        schema_file: Some(dir.path().join("none.json")),
        ..StoresSettings::default()
    };
    assert!(matches!(
        missing.resolve(),
        Err(StoresSettingsError::Read { .. })
    ));
}
