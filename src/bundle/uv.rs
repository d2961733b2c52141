//! The `uv` wheel a bundle carries for each platform, so that `up --bundle` has uv on a
//! machine that has none. It is found on a package index's simple page for `uv` (PEP 503
//! HTML; `file://` indexes read `uv/index.html`, as pip does) and fetched like every
//! other member, checked against the sha256 the index gives.

use std::time::Duration;

use super::{BundlePlatform, Error};

/// The index the `uv` wheel is taken from; else `UV_DEFAULT_INDEX`, `UV_INDEX_URL`,
/// `PIP_INDEX_URL`, else PyPI.
pub const UV_INDEX_ENV: &str = "BEEP_HOST_UV_INDEX";
const PYPI: &str = "https://pypi.org/simple";

/// One `uv` wheel on the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UvWheel {
    pub file_name: String,
    pub url: String,
    pub sha256: String,
}

/// The simple index in force (without a trailing `/`).
pub fn index_url() -> String {
    [
        UV_INDEX_ENV,
        "UV_DEFAULT_INDEX",
        "UV_INDEX_URL",
        "PIP_INDEX_URL",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
    .unwrap_or_else(|| PYPI.to_string())
    .trim()
    .trim_end_matches('/')
    .to_string()
}

/// The simple page of `uv` on `index`.
async fn page(index: &str) -> Result<(String, String), Error> {
    let page_url = format!("{index}/uv/");
    let problem = |problem: String| Error::UvIndex {
        url: page_url.clone(),
        problem,
    };
    if let Some(dir) = crate::runtime::download::file_url_path(&page_url) {
        let file = dir.join("index.html");
        let text = fs_err::read_to_string(&file).map_err(Error::read(&file))?;
        return Ok((text, page_url));
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("beep-host/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| problem(e.to_string()))?;
    let response = client
        .get(&page_url)
        .header(reqwest::header::ACCEPT, "text/html")
        .send()
        .await
        .map_err(|e| problem(crate::error::chain(&e)))?;
    if !response.status().is_success() {
        return Err(problem(format!("HTTP {}", response.status())));
    }
    let text = response
        .text()
        .await
        .map_err(|e| problem(crate::error::chain(&e)))?;
    Ok((text, page_url))
}

/// The newest released `uv` wheel on `index` for `platform`.
pub async fn find(
    index: &str,
    platform: BundlePlatform,
    python: (u64, u64),
) -> Result<UvWheel, Error> {
    let (text, page_url) = page(index).await?;
    choose(&text, &page_url, platform, python).ok_or_else(|| Error::NoUvWheel {
        index: index.to_string(),
        platform: platform.to_string(),
    })
}

/// Every `(href, file name, sha256)` of a PEP 503 page's non-yanked wheel links.
fn links(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for tag in text.split("<a ").skip(1) {
        let Some(tag) = tag.split('>').next() else {
            continue;
        };
        if tag.contains("data-yanked") {
            continue;
        }
        let Some(rest) = tag.split("href=").nth(1) else {
            continue;
        };
        let quote = rest.chars().next().unwrap_or('"');
        let href: String = rest
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|&c| c != quote)
            .collect();
        let href = href.replace("&amp;", "&");
        let (link, fragment) = href.split_once('#').unwrap_or((&href, ""));
        let Some(sha256) = fragment.strip_prefix("sha256=") else {
            continue;
        };
        let path = link.split('?').next().unwrap_or(link);
        let file = path.rsplit('/').next().unwrap_or(path);
        let file = file.replace("%2B", "+").replace("%2b", "+");
        if file.starts_with("uv-") && file.ends_with(".whl") {
            out.push((link.to_string(), file, sha256.to_ascii_lowercase()));
        }
    }
    out
}

fn choose(
    text: &str,
    page_url: &str,
    platform: BundlePlatform,
    python: (u64, u64),
) -> Option<UvWheel> {
    let base = reqwest::Url::parse(page_url).ok()?;
    links(text)
        .into_iter()
        .filter_map(|(link, file, sha256)| {
            let version = file.split('-').nth(1)?.to_string();
            // Releases only: a pre-release (`0.9.0a1`, `rc`, `dev`) has letters.
            if !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            let rank = platform.wheel_rank(&file, python)?;
            let url = base.join(&link).ok()?.to_string();
            Some((
                crate::runtime::version_tuple(&version),
                rank,
                file,
                url,
                sha256,
            ))
        })
        .max_by(|a, b| (&a.0, std::cmp::Reverse(a.1)).cmp(&(&b.0, std::cmp::Reverse(b.1))))
        .map(|(_, _, file_name, url, sha256)| UvWheel {
            file_name,
            url,
            sha256,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_release_for_the_platform_is_chosen() {
        let page = r#"<html><body>
<a href="../../packages/uv-0.8.0-py3-none-manylinux_2_17_x86_64.whl#sha256=AA">x</a>
<a href="../../packages/uv-0.9.1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl#sha256=bb">x</a>
<a href="../../packages/uv-0.9.1-py3-none-win_amd64.whl#sha256=cc">x</a>
<a href="../../packages/uv-0.9.1-py3-none-macosx_11_0_arm64.whl#sha256=dd">x</a>
<a href="../../packages/uv-0.9.2-py3-none-manylinux_2_17_x86_64.whl#sha256=ee" data-yanked="">x</a>
<a href="../../packages/uv-0.10.0a1-py3-none-manylinux_2_17_x86_64.whl#sha256=ff">x</a>
<a href="../../packages/uv-0.9.1.tar.gz#sha256=00">x</a>
</body></html>"#;
        let base = "https://example.org/simple/uv/";
        let linux = choose(page, base, BundlePlatform::LinuxX86_64Gnu, (3, 12)).unwrap();
        assert_eq!(linux.sha256, "bb");
        assert_eq!(
            linux.url,
            "https://example.org/packages/uv-0.9.1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        );
        let windows = choose(page, base, BundlePlatform::WindowsX86_64, (3, 12)).unwrap();
        assert_eq!(windows.file_name, "uv-0.9.1-py3-none-win_amd64.whl");
        assert!(choose("<html></html>", base, BundlePlatform::MacosAarch64, (3, 12)).is_none());
    }
}
