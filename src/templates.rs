//! The one way kehoach renders templates (e-mails, reports, later pages):
//! minijinja with strict undefined values (a typo fails loudly instead of
//! leaving holes), HTML autoescaping for `*.html`, and block-friendly
//! whitespace.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Escapes text for HTML content and attribute values. minijinja's own
/// escaper also turns '/' into "&#x2f;", safe but ugly in dates and links.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An environment holding the given `(name, source)` templates.
pub fn environment(templates: &[(&'static str, &'static str)]) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(s) if *state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            out.write_str(&escape_html(s)).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()?;
    env.set_syntax(syntax);
    for (name, source) in templates {
        env.add_template(name, source)?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_but_text_is_not() {
        let env = environment(&[("a.html", "<p>{{ x }}</p>"), ("a.txt", "{{ x }}")]).unwrap();
        let ctx = minijinja::context! { x => "<b>1/2 & \"x\"</b>" };
        assert_eq!(
            env.get_template("a.html").unwrap().render(&ctx).unwrap(),
            "<p>&lt;b&gt;1/2 &amp; &quot;x&quot;&lt;/b&gt;</p>"
        );
        assert_eq!(
            env.get_template("a.txt").unwrap().render(&ctx).unwrap(),
            "<b>1/2 & \"x\"</b>"
        );
        assert!(environment(&[("b.html", "{{ missing }}")])
            .unwrap()
            .get_template("b.html")
            .unwrap()
            .render(minijinja::context! {})
            .is_err());
    }
}
