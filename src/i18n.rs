//! The console's own words in English and Chinese. Messages from the engine and the
//! protocols (errors, log details) stay in English: they are what a support engineer reads.
//! The exception is the readings' verdicts (`v.*`): the technician acts on them, so
//! `readings` words them here from the engine's typed refusal.

/// A UI language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The browser's language: Chinese for any `zh`, else English.
    pub fn from_browser(tag: &str) -> Lang {
        if tag.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The `lang` attribute value.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// (key, English, Chinese).
const WORDS: &[(&str, &str, &str)] = &[
    ("title", "SOTA upgrade console", "SOTA 升级控制台"),
    ("lede", "MCU firmware over the air, from this laptop to the board on the USB cable.", "通过 USB 线为电路板上的 MCU 升级固件。"),
    ("device", "1 · Device", "1 · 设备"),
    ("protocol", "Protocol", "协议"),
    ("p.at", "QuecThing AT (MCU built for a Quectel module)", "QuecThing AT（为移远模组设计的 MCU）"),
    ("p.ymodem", "YMODEM-1K (bootloader that receives YMODEM)", "YMODEM-1K（接收 YMODEM 的引导程序）"),
    ("p.an3155", "STM32 ROM bootloader (AN3155)", "STM32 ROM 引导程序（AN3155）"),
    ("serial", "Serial settings", "串口设置"),
    ("baud", "Baud rate", "波特率"),
    ("data_bits", "Data bits", "数据位"),
    ("parity", "Parity", "校验"),
    ("stop_bits", "Stop bits", "停止位"),
    ("flow", "Flow control", "流控"),
    ("none", "None", "无"),
    ("even", "Even", "偶校验"),
    ("odd", "Odd", "奇校验"),
    ("hardware", "RTS/CTS", "RTS/CTS"),
    ("connect", "Connect device", "连接设备"),
    ("simulate", "Use simulated device", "使用模拟设备"),
    ("disconnect", "Disconnect", "断开"),
    ("not_connected", "No device connected.", "未连接设备。"),
    ("opening", "Opening the port…", "正在打开串口…"),
    ("connected", "Connected", "已连接"),
    ("lost", "Connection lost", "连接已断开"),
    ("no_serial", "This browser cannot reach serial ports (Web Serial is missing). Use Chrome or Edge on a computer. The simulated device still works here.", "此浏览器无法访问串口（不支持 Web Serial）。请在电脑上使用 Chrome 或 Edge。模拟设备仍可使用。"),
    ("not_secure", "Serial ports need a secure page: open the console over https or at http://127.0.0.1. The simulated device still works here.", "串口需要安全页面：请通过 https 或 http://127.0.0.1 打开控制台。模拟设备仍可使用。"),
    ("identity", "Component", "组件"),
    ("reported", "The MCU reports", "MCU 上报"),
    ("waiting_version", "waiting for the MCU to report its version…", "等待 MCU 上报版本…"),
    ("chip", "ROM bootloader", "ROM 引导程序"),
    ("firmware", "2 · Firmware", "2 · 固件"),
    ("target_version", "Version after the upgrade", "升级后的版本"),
    ("address", "Flash address", "烧录地址"),
    ("upgrade", "3 · Upgrade", "3 · 升级"),
    ("start", "Start upgrade", "开始升级"),
    ("cancel", "Cancel", "取消"),
    ("need_connect", "Connect a device first.", "请先连接设备。"),
    ("need_file", "Choose a firmware file.", "请选择固件文件。"),
    ("need_version", "Enter the version the MCU will run after the upgrade.", "请输入升级后 MCU 的版本。"),
    ("need_identity", "Enter the component identity.", "请输入组件标识。"),
    ("bad_address", "The flash address must be a number such as 0x08000000.", "烧录地址必须是数字，例如 0x08000000。"),
    ("mcu_waiting", "The MCU asks for a plan: press Start upgrade.", "MCU 正在请求升级计划：请点击开始升级。"),
    ("s.Idle", "Ready.", "就绪。"),
    ("s.Connecting", "Waiting for the bootloader to answer…", "等待引导程序应答…"),
    ("s.WaitingForMcu", "Waiting for the MCU to ask for the plan…", "等待 MCU 请求升级计划…"),
    ("s.Verifying", "Getting the image and checking MD5, CRC32 and SHA-256…", "正在获取固件并校验 MD5、CRC32 和 SHA-256…"),
    ("s.Erasing", "Erasing flash…", "正在擦除闪存…"),
    ("s.Writing", "Writing firmware to the MCU…", "正在向 MCU 写入固件…"),
    ("s.ReadingBack", "Reading back and comparing…", "正在回读校验…"),
    ("s.Updating", "The MCU is installing the firmware and restarting…", "MCU 正在安装固件并重启…"),
    ("s.Done", "Finished.", "已完成。"),
    ("s.Failed", "Stopped.", "已停止。"),
    ("left", "left", "剩余"),
    ("result", "Result", "结果"),
    ("ok", "Upgrade succeeded", "升级成功"),
    ("failed", "Upgrade failed", "升级失败"),
    ("cancelled", "Upgrade cancelled", "升级已取消"),
    ("next_ok", "You can unplug the board.", "可以拔下电路板。"),
    ("next_failed", "The board keeps its previous firmware where the protocol allows. Check the message, the cable and the settings, then start again.", "在协议允许时电路板保留原固件。请检查提示、线缆和设置后重试。"),
    ("log", "Log", "日志"),
    ("hex", "Show raw serial data (hex)", "显示原始串口数据（十六进制）"),
    ("download_log", "Download log", "下载日志"),
    ("hidden", "This tab is in the background: the browser may slow the transfer down. Keep it in front until the upgrade ends.", "此标签页在后台：浏览器可能会减慢传输。请保持在前台直到升级结束。"),
    ("demo_file", "Use a demo image", "使用演示固件"),
    ("paused", "Paused: the board is disconnected. Plug it back in (or press Connect device and pick it again) — the transfer continues where the board last confirmed. Cancel stops the upgrade.", "已暂停：电路板已断开。请重新插上（或点击连接设备并再次选择）——传输将从电路板最后确认的位置继续。取消将停止升级。"),
    ("language", "Language", "语言"),
    ("drop", "Drop a firmware file here, or ", "将固件文件拖到这里，或 "),
    ("digest", "Digest", "摘要"),
    ("computed", "Computed", "计算值"),
    ("expected", "Expected (optional)", "期望值（可选）"),
    ("size", "Size", "大小"),
    ("hex_digits", "{n} hex digits", "{n} 位十六进制"),
    ("no_file", "No file chosen.", "未选择文件。"),
    ("reading", "Reading", "正在读取"),
    ("checked", "checked.", "已校验。"),
    ("center", "2 · Plans from the center", "2 · 来自平台的升级计划"),
    ("center_hint", "The console logs in to the center as this device, reports the MCU's version and gets its plans. Or skip this and use a local file below.", "控制台以此设备身份登录平台，上报 MCU 版本并获取升级计划。也可以跳过此步，在下方使用本地文件。"),
    ("product_key", "Product key", "产品 Key"),
    ("device_key", "Device key (from the board's label)", "设备 Key（见电路板标签）"),
    ("device_secret", "Device secret", "设备密钥"),
    ("product_secret", "Product secret (only to register a new device)", "产品密钥（仅用于注册新设备）"),
    ("center_address", "Center address", "平台地址"),
    ("center_address_here", "empty: the center that served this page", "留空：提供本页面的平台"),
    ("center_connect", "Get plans from the center", "从平台获取升级计划"),
    ("center_connecting", "Logging in to the center…", "正在登录平台…"),
    ("center_connected", "Connected to the center.", "已连接平台。"),
    ("center_lost", "The center is unreachable; trying again. Reports wait in this browser and are sent when it is back.", "无法连接平台，正在重试。状态报告保存在本浏览器中，连接恢复后发送。"),
    ("need_secret", "Enter the device secret, or the product secret to register this device.", "请输入设备密钥，或输入产品密钥以注册此设备。"),
    ("offered", "Offered plans", "平台下发的计划"),
    ("full_package", "full package", "整包"),
    ("delta_from", "delta from", "差分包，源版本"),
    ("mode_silent", "silent", "静默升级"),
    ("mode_manual", "manual", "用户确认升级"),
    ("battery", "battery", "电量"),
    ("signal", "signal", "信号"),
    ("free_flash", "free flash", "剩余空间"),
    ("needs", "The MCU needs", "MCU 需满足"),
    ("firmware_or", "Or: a local firmware file", "或者：使用本地固件文件"),
    ("decide", "This plan waits for your decision.", "此计划等待您的确认。"),
    ("accept", "Accept", "接受"),
    ("refuse", "Refuse", "拒绝"),
    ("refuse_reason", "Reason", "原因"),
    ("need_reason", "Say why the plan is refused: the center logs it.", "请填写拒绝原因：平台会记录。"),
    ("readings", "Readings on site", "现场读数"),
    ("readings_hint", "Optional. Enter what you measure to check the plan's limits here; a field left empty is checked by the MCU when it confirms the plan.", "可选。填写现场测量值以核对计划要求；留空的项由 MCU 确认计划时自行检查。"),
    ("battery_now", "Battery (%)", "电量 (%)"),
    ("signal_now", "Signal (dBm)", "信号 (dBm)"),
    ("free_flash_now", "Free flash (KiB)", "可用闪存 (KiB)"),
    ("override_reason", "Why go ahead anyway (sent to the center)", "仍然升级的原因（发送给平台）"),
    ("need_override", "A reading misses the plan's limits: say why you go ahead anyway, or refuse the plan.", "读数未满足计划要求：请填写仍然升级的原因，或拒绝该计划。"),
    ("accept_anyway", "Accept anyway", "仍然接受"),
    // An upgrade a reload or a crash interrupted, offered to be continued.
    ("kept.title", "An upgrade was interrupted", "有一次升级被中断"),
    ("kept.was", "The page closed during the upgrade of", "页面在升级过程中关闭："),
    ("kept.sent", "confirmed by the MCU", "已由 MCU 确认"),
    ("kept.downloaded", "downloaded", "已下载"),
    ("kept.hint", "Keep the same board plugged in and continue: it goes on from the last confirmed offset, and the center gets every report.", "请保持同一块板子连接并继续：升级将从最后确认的位置继续，所有状态都会上报平台。"),
    ("kept.continue", "Continue the upgrade", "继续升级"),
    ("kept.drop", "Drop it", "放弃"),
    // The readings' verdicts, one per strategy limit: `{have}` measured, `{need}` the plan's.
    ("v.battery_ok", "battery {have} % meets the minimum of {need} %", "电量 {have} % 满足计划要求的最低 {need} %"),
    ("v.battery_low", "battery {have} % is below the plan's minimum of {need} % — charge the device", "电量 {have} % 低于计划要求的 {need} % — 请先充电"),
    ("v.signal_ok", "signal {have} dBm meets the minimum of {need} dBm", "信号 {have} dBm 满足计划要求的最低 {need} dBm"),
    ("v.signal_weak", "signal {have} dBm is weaker than the plan's minimum of {need} dBm — move to better coverage", "信号 {have} dBm 弱于计划要求的 {need} dBm — 请移到信号更好的位置"),
    ("v.flash_ok", "{have} KiB of flash free meets the {need} bytes needed", "可用闪存 {have} KiB，满足升级所需的 {need} 字节"),
    ("v.flash_short", "{have} bytes of flash free, the upgrade needs {need} — free some space", "可用闪存 {have} 字节，升级需要 {need} 字节 — 请先清理空间"),
    ("v.source_mismatch", "delta package for version {need} but the device reports {have}", "差分包要求源版本 {need}，但设备上报的版本是 {have}"),
    ("v.source_unknown", "delta package for version {need} but the device reports no version", "差分包要求源版本 {need}，但设备未上报版本"),
    // The engineer's pages of the center (`/center`).
    ("c.title", "SOTA Developer Center", "SOTA 开发者中心"),
    ("c.lede", "Products, devices and version packages of this center.", "本平台的产品、设备和版本包。"),
    ("c.nav", "Center pages", "平台页面"),
    ("c.products", "Products", "产品"),
    ("c.packages", "Version packages", "版本包"),
    ("c.technician", "Technician console ↗", "现场升级控制台 ↗"),
    ("c.sign_in", "Sign in", "登录"),
    ("c.sign_in_again", "Sign in again", "请重新登录"),
    ("c.sign_in_button", "Sign in", "登录"),
    ("c.sign_out", "Sign out", "退出登录"),
    ("c.token", "Operator token", "操作员令牌"),
    ("c.token_hint", "The center's pages need an operator token, kept in this browser until you sign out. An administrator creates one on the center's machine with:", "平台页面需要操作员令牌，令牌保存在本浏览器中，直到退出登录。管理员可在平台所在机器上用以下命令创建："),
    ("c.need_token", "Paste the operator token.", "请粘贴操作员令牌。"),
    ("c.loading", "Loading…", "正在加载…"),
    ("c.not_found", "This page does not exist.", "页面不存在。"),
    ("c.no_products", "No products yet.", "暂无产品。"),
    ("c.product_key", "Product key", "产品 Key"),
    ("c.name", "Name", "名称"),
    ("c.created", "Created", "创建时间"),
    ("c.demo", "demo", "演示"),
    ("c.devices_of", "Devices of", "设备列表："),
    ("c.search_key", "Device key starts with", "设备 Key 前缀"),
    ("c.search_placeholder", "e.g. field-", "例如 field-"),
    ("c.search", "Search", "搜索"),
    ("c.no_devices", "No device matches.", "没有匹配的设备。"),
    ("c.device_key", "Device key", "设备 Key"),
    ("c.components", "Components and versions", "组件与版本"),
    ("c.last_seen", "Last seen", "最后上报"),
    ("c.registered", "Registered", "注册时间"),
    ("c.previous", "← Previous", "← 上一页"),
    ("c.next", "Next →", "下一页 →"),
    ("c.device", "Device", "设备"),
    ("c.no_components", "The device has not reported any component yet.", "设备尚未上报任何组件。"),
    ("c.identity", "Component", "组件"),
    ("c.version", "Version", "版本"),
    ("c.history", "Upgrade history", "升级记录"),
    ("c.no_upgrades", "No plan has been offered to this device yet.", "尚未向此设备下发升级计划。"),
    ("c.plan", "Plan", "计划"),
    ("c.status", "Status", "状态"),
    ("c.outcome", "Outcome", "结果"),
    ("c.updated", "Updated", "更新时间"),
    ("c.upgrade_log", "Upgrade log", "升级日志"),
    ("c.pending", "in progress", "进行中"),
    ("c.succeeded", "succeeded", "成功"),
    ("c.failed", "failed", "失败"),
    ("c.refused", "refused", "已拒绝"),
    ("c.no_packages", "No version packages yet.", "暂无版本包。"),
    ("c.add_package", "Add a version package", "添加版本包"),
    ("c.delete", "Delete", "删除"),
    ("c.delete_confirm", "Delete this package and its files?", "删除此版本包及其文件？"),
    ("c.delete_yes", "Yes, delete", "确认删除"),
    ("c.keep", "Keep it", "保留"),
    ("c.file", "File", "文件"),
    ("c.sota", "MCU (SOTA)", "MCU（SOTA）"),
    ("c.fota", "module (FOTA)", "模组（FOTA）"),
    ("c.sota_long", "SOTA: MCU firmware", "SOTA：MCU 固件"),
    ("c.fota_long", "FOTA: module firmware", "FOTA：模组固件"),
    ("c.full", "full", "整包"),
    ("c.delta", "delta from", "差分包，源版本"),
    ("c.full_long", "Full package: installs on any other version", "整包：可安装在任何其他版本上"),
    ("c.delta_long", "Delta package: installs only on its source version", "差分包：仅可安装在源版本上"),
    ("c.package_name", "Package name", "版本包名称"),
    ("c.product", "Product", "产品"),
    ("c.component_type", "Component type", "组件类型"),
    ("c.package_type", "Package type", "包类型"),
    ("c.source_version", "Source version", "源版本"),
    ("c.target_version", "Target version", "目标版本"),
    ("c.files", "Files", "文件"),
    ("c.files_rule", "Up to {n} files, each at most 100 MiB, with a name ending in {ext}", "最多 {n} 个文件，每个不超过 100 MiB，文件名须以下列之一结尾：{ext}"),
    ("c.choose_files", "Choose files…", "选择文件…"),
    ("c.remove", "Remove", "移除"),
    ("c.remarks", "Remarks", "备注"),
    ("c.upload", "Upload package", "上传版本包"),
    ("c.uploading", "Uploading…", "正在上传…"),
    ("c.back_to_packages", "Back to the packages", "返回版本包列表"),
    ("c.stored", "Stored: package", "已保存：版本包"),
];

/// The text for `key` in `lang`; the key itself if missing (visible, never a panic).
pub fn t(lang: Lang, key: &str) -> &str {
    WORDS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, en, zh)| match lang {
            Lang::En => en,
            Lang::Zh => zh,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn every_key_is_unique_and_has_both_languages() {
        for (i, (k, en, zh)) in WORDS.iter().enumerate() {
            assert!(!en.is_empty() && !zh.is_empty(), "{k}");
            assert!(WORDS[i + 1..].iter().all(|(o, _, _)| o != k), "{k} twice");
        }
        assert_eq!(t(Lang::Zh, "start"), "开始升级");
        assert_eq!(t(Lang::En, "no.such.key"), "no.such.key");
        assert_eq!(Lang::from_browser("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_browser("en-US"), Lang::En);
    }
}
