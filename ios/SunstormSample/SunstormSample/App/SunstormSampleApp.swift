import SwiftUI

@main
struct SunstormSampleApp: App {
    @StateObject private var model = AppModel()

    var body: some Scene {
        WindowGroup {
            HomeView()
                .environmentObject(model)
                // Universal Links (applinks:sigilvault.xyz, limited to /pair by the AASA file)
                // arrive here; the core's parser decides. No custom URL scheme.
                .onOpenURL { model.open(url: $0) }
                .onContinueUserActivity(NSUserActivityTypeBrowsingWeb) { activity in
                    if let url = activity.webpageURL { model.open(url: url) }
                }
        }
    }
}
