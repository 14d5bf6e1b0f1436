//! The FACS tables as the command line renders them, and the README's copy of the AU
//! catalogue.

use assert_cmd::Command;

fn actfer(args: &[&str]) -> String {
    let out = Command::cargo_bin("actfer")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readme_catalogue_is_the_generated_one() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let begin = "<!-- au-catalogue:begin -->\n";
    let start = readme
        .find(begin)
        .expect("README has the AU catalogue markers")
        + begin.len();
    let end = readme.find("<!-- au-catalogue:end -->").unwrap();
    assert_eq!(
        &readme[start..end],
        actfer(&["facs", "aus", "--markdown"]),
        "README's AU catalogue is stale: paste `actfer facs aus --markdown` between the markers"
    );
}

#[test]
fn catalogue_json_lists_the_required_aus() {
    let v: serde_json::Value = serde_json::from_str(&actfer(&["facs", "aus", "--json"])).unwrap();
    let numbers: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["number"].as_u64().unwrap())
        .collect();
    for n in [
        1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 27, 28, 43, 45,
    ] {
        assert!(numbers.contains(&n), "AU{n}");
    }
    let au9 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["number"] == 9)
        .unwrap();
    assert_eq!(au9["muscle"], "levator labii superioris alaeque nasi");
    assert_eq!(au9["emotions"], serde_json::json!(["disgust"]));
}

#[test]
fn emotions_table() {
    let text = actfer(&["facs", "emotions"]);
    assert!(text
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["contempt", "negative", "R12+R14"]));
    assert!(text
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["surprise", "surprise", "AU1+AU2+AU5+AU26"]));
}
